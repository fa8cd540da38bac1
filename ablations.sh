#!/usr/bin/env bash
# Single-seed ablations of the SWARR recipe on the synthetic task (CPU scale): the SWA + SFT and
# SWA + SFT + RL arms of reproduce.sh with one thing changed each. Resumable like reproduce.sh.
#
#   bash ablations.sh            # about 25 minutes on 2 CPU cores
set -euo pipefail
cd "$(dirname "$0")"
OUT=${OUT:-out/ablations}
DEVICE=${DEVICE:-$(python -c "import torch; print('cuda' if torch.cuda.is_available() else 'cpu')")}
stage() { local target=$1; shift; if [ -e "$target" ]; then echo "== $target exists, skipped"; else echo "== $*"; "$@"; fi; }

for share in 0 0.3; do  # the carry-forward share of the SFT data (default 0.1)
  stage "$OUT/data_carry$share/sft.jsonl" python -m data.synthetic --out "$OUT/data_carry$share" --seed 0 --steps 4,8,12 --pad 2 \
    --carry-share "$share" --rl-steps 8,12 --n-sft 20000 --n-val 512 --n-rl 0 --n-test 0
done

arm() {  # arm NAME SFT-ARGS...: SWA + SFT, then SWA + SFT + RL
  local name=$1; shift
  stage "$OUT/$name/swa_sft.pt" python sft.py --max-steps 300 --seed 0 --device "$DEVICE" --out "$OUT/$name/swa_sft.pt" "$@"
  stage "$OUT/$name/swa_rl.pt" python rl.py --init "$OUT/$name/swa_sft.pt" --max-steps 100 --lr 2e-4 --mask-truncated --seed 0 \
    --eval-every 100 --device "$DEVICE" --out "$OUT/$name/swa_rl.pt"
}
arm carry0 --window 32 --data "$OUT/data_carry0/sft.jsonl" --val-data "$OUT/data_carry0/val.jsonl"
arm carry30 --window 32 --data "$OUT/data_carry0.3/sft.jsonl" --val-data "$OUT/data_carry0.3/val.jsonl"
arm sinks4 --window 32 --sinks 4
arm hybrid_layer0_full --window 32 --full-layers 0
arm window48 --window 48

ckpts=()
for name in carry0 carry30 sinks4 hybrid_layer0_full window48; do ckpts+=("$OUT/$name/swa_sft.pt" "$OUT/$name/swa_rl.pt"); done
stage "$OUT/arms.json" python evaluate.py --compare "${ckpts[@]}" --force-style free carry --device "$DEVICE" --out "$OUT/arms"
awk '/^\|/{p=1} p && !/^\|/{exit} p' "$OUT/arms.md"
