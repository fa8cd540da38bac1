#!/usr/bin/env bash
# Reproduce the SWARR finding on the synthetic task, from the shipped full-attention base model:
#   SA + SFT, SWA + SFT, SWA + SFT + RL (and with CONTROL=1 the SA + SFT + RL control),
# then one table: greedy accuracy per difficulty, each arm at its own attention, and the SWA + SFT
# model with each solution style forced (its ceiling under the window).
#
#   bash reproduce.sh                                   # demo: one seed, CPU, about 5 minutes on 2 cores
#   SEEDS="0 1 2" CONTROL=1 RL_STEPS=100 bash reproduce.sh   # the pilot in RESULTS.md
#
# Every stage is skipped when its output exists, so an interrupted run picks up where it stopped.
set -euo pipefail
cd "$(dirname "$0")"
SEEDS=${SEEDS:-0}
SFT_STEPS=${SFT_STEPS:-300}
RL_STEPS=${RL_STEPS:-60}
RL_LR=${RL_LR:-2e-4}
CONTROL=${CONTROL:-0}
WINDOW=${WINDOW:-32}
OUT=${OUT:-out/repro}
DEVICE=${DEVICE:-$(python -c "import torch; print('cuda' if torch.cuda.is_available() else 'cpu')")}
mkdir -p "$OUT"

stage() {  # stage OUTPUT COMMAND...: run COMMAND unless OUTPUT exists
  local target=$1; shift
  if [ -e "$target" ]; then echo "== $target exists, skipped"; else echo "== $*"; "$@"; fi
}

arms=()
for seed in $SEEDS; do
  d="$OUT/seed$seed"
  stage "$d/swa_sft.pt" python sft.py --window "$WINDOW" --max-steps "$SFT_STEPS" --seed "$seed" --device "$DEVICE" --out "$d/swa_sft.pt"
  stage "$d/sa_sft.pt" python sft.py --window none --max-steps "$SFT_STEPS" --seed "$seed" --device "$DEVICE" --out "$d/sa_sft.pt"
  stage "$d/swa_rl.pt" python rl.py --init "$d/swa_sft.pt" --max-steps "$RL_STEPS" --lr "$RL_LR" --mask-truncated --seed "$seed" \
    --eval-every "$RL_STEPS" --device "$DEVICE" --out "$d/swa_rl.pt"
  arms+=("$d/sa_sft.pt" "$d/swa_sft.pt" "$d/swa_rl.pt")
  if [ "$CONTROL" = 1 ]; then
    stage "$d/sa_rl.pt" python rl.py --init "$d/sa_sft.pt" --max-steps "$RL_STEPS" --lr "$RL_LR" --mask-truncated --seed "$seed" \
      --eval-every "$RL_STEPS" --device "$DEVICE" --out "$d/sa_rl.pt"
    arms+=("$d/sa_rl.pt")
  fi
  stage "$OUT/ceiling_seed$seed.json" python evaluate.py --ckpt "$d/swa_sft.pt" --force-style lookback carry --device "$DEVICE" \
    --out "$OUT/ceiling_seed$seed"
done
stage "$OUT/arms.json" python evaluate.py --compare "${arms[@]}" --device "$DEVICE" --out "$OUT/arms"
first_table() { awk '/^\|/{p=1} p && !/^\|/{exit} p' "$1"; }
echo
echo "Each style forced under the window (the SWA + SFT model's ceiling), greedy accuracy %:"
for f in "$OUT"/ceiling_seed*.md; do first_table "$f"; done
echo
echo "The arms, each at its own attention, greedy accuracy %:"
first_table "$OUT/arms.md"
