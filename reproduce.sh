#!/usr/bin/env bash
# Reproduce the SWARR finding on the synthetic task, from the shipped full-attention base model:
#   SA + SFT, SWA + SFT, SWA + SFT + RL (and with CONTROL=1 the SA + SFT + RL control),
# then one table: greedy accuracy per difficulty, each arm at its own attention, and the SWA + SFT
# model with each solution style forced (its ceiling under the window).
#
#   bash reproduce.sh                                   # demo: one seed, CPU, about 5 minutes on 2 cores
#   SEEDS="0 1 2" CONTROL=1 RL_STEPS=100 bash reproduce.sh   # RESULTS.md's CPU run (about 26 minutes)
#   SEEDS="0 1 2" CONTROL=1 RL_STEPS=100 JOBS=6 bash reproduce.sh   # the same, 6 processes at a time (GPU: 4 minutes)
#   MODEL=out/abl/depth/layers12/base bash reproduce.sh   # from another base model (here one that ablations.sh built)
#   EVAL_BASE=1 ...                                       # also the base model's own reach: full attention, each style forced
#
# A finished stage is skipped and a cut-off sft.py / rl.py stage resumes from its last checkpoint,
# so an interrupted run picks up where it stopped.
# Each seed is two independent chains, SWA (SFT -> RL, and the ceiling) and SA (SFT [-> RL]). JOBS=1
# runs them one after the other; JOBS>1 runs up to JOBS chains at once, each logging to $OUT/logs/.
set -euo pipefail
cd "$(dirname "$0")"
SEEDS=${SEEDS:-0}
MODEL=${MODEL:-base_model}  # the full-attention base model every arm starts from
SFT_STEPS=${SFT_STEPS:-300}
RL_STEPS=${RL_STEPS:-60}
RL_LR=${RL_LR:-2e-4}
CONTROL=${CONTROL:-0}
WINDOW=${WINDOW:-32}
OUT=${OUT:-out/repro}
JOBS=${JOBS:-1}
EVAL_BATCH=${EVAL_BATCH:-64}  # sequences per generate call in evaluate.py; 256 on a GPU
EVAL_SIZE=${EVAL_SIZE:-}  # the first N problems of each test set and RL eval file (a quick check of the script); default all
EVAL_BASE=${EVAL_BASE:-0}  # 1: also the base model at full attention, each style forced (how far its pretraining reaches)
DEVICE=${DEVICE:-$(python -c "import torch; print('cuda' if torch.cuda.is_available() else 'cpu')")}
mkdir -p "$OUT"

source ./stages.sh

swa_chain() {  # swa_chain SEED: SWA + SFT -> SWA + SFT + RL, then the SWA + SFT model with each style forced
  local seed=$1 d="$OUT/seed$1"
  stage "$d/swa_sft.pt" python sft.py --model "$MODEL" --window "$WINDOW" --max-steps "$SFT_STEPS" --seed "$seed" --device "$DEVICE" --out "$d/swa_sft.pt"
  stage "$d/swa_rl.pt" python rl.py --model "$d/swa_sft.pt" --max-steps "$RL_STEPS" --lr "$RL_LR" --mask-truncated --seed "$seed" \
    --eval-every "$RL_STEPS" ${EVAL_SIZE:+--eval-size "$EVAL_SIZE"} --device "$DEVICE" --out "$d/swa_rl.pt"
  stage "$OUT/ceiling_seed$seed.json" python evaluate.py --batch-size "$EVAL_BATCH" ${EVAL_SIZE:+--eval-size "$EVAL_SIZE"} --save-completions --model "$d/swa_sft.pt" --force-style lookback carry --device "$DEVICE" \
    --out "$OUT/ceiling_seed$seed"
}
sa_chain() {  # sa_chain SEED: SA + SFT, and with CONTROL=1 SA + SFT + RL
  local seed=$1 d="$OUT/seed$1"
  stage "$d/sa_sft.pt" python sft.py --model "$MODEL" --window none --max-steps "$SFT_STEPS" --seed "$seed" --device "$DEVICE" --out "$d/sa_sft.pt"
  if [ "$CONTROL" = 1 ]; then
    stage "$d/sa_rl.pt" python rl.py --model "$d/sa_sft.pt" --max-steps "$RL_STEPS" --lr "$RL_LR" --mask-truncated --seed "$seed" \
      --eval-every "$RL_STEPS" ${EVAL_SIZE:+--eval-size "$EVAL_SIZE"} --device "$DEVICE" --out "$d/sa_rl.pt"
  fi
}

arms=()
for seed in $SEEDS; do
  chain "seed${seed}_swa" swa_chain "$seed"
  chain "seed${seed}_sa" sa_chain "$seed"
  d="$OUT/seed$seed"
  arms+=("$d/sa_sft.pt" "$d/swa_sft.pt" "$d/swa_rl.pt")
  if [ "$CONTROL" = 1 ]; then arms+=("$d/sa_rl.pt"); fi
done
if [ "$EVAL_BASE" = 1 ]; then
  chain base stage "$OUT/base.json" python evaluate.py --batch-size "$EVAL_BATCH" ${EVAL_SIZE:+--eval-size "$EVAL_SIZE"} --save-completions --model "$MODEL" \
    --window none --force-style free carry lookback --device "$DEVICE" --out "$OUT/base"
fi
wait_chains
stage "$OUT/arms.json" python evaluate.py --batch-size "$EVAL_BATCH" ${EVAL_SIZE:+--eval-size "$EVAL_SIZE"} --save-completions --model "${arms[@]}" --device "$DEVICE" --out "$OUT/arms"
first_table() { awk '/^\|/{p=1} p && !/^\|/{exit} p' "$1"; }
echo
echo "Each style forced under the window (the SWA + SFT model's ceiling), greedy accuracy %:"
for f in "$OUT"/ceiling_seed*.md; do first_table "$f"; done
echo
echo "The arms, each at its own attention, greedy accuracy %:"
first_table "$OUT/arms.md"
