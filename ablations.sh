#!/usr/bin/env bash
# Ablations of the SWARR recipe on the synthetic task (CPU scale): the SWA + SFT and SWA + SFT + RL
# arms of reproduce.sh with one thing changed each, per seed in $OUT/NAME/seedS/. Resumable like
# reproduce.sh; JOBS>1 runs up to JOBS (variant, seed) chains at once, each logging to $OUT/logs/.
# MAP_WINDOWS adds a map of where SFT alone suffices: SWA + SFT at each window, every style forced.
# MAP_DEPTHS adds the same over depths at W=32, each from a base model of that depth pretrained here.
#
#   bash ablations.sh                                      # one seed, about 25 minutes on 2 CPU cores
#   SEEDS="0 1 2" JOBS=8 MAP_WINDOWS="16 24 48 64" bash ablations.sh
#   SEEDS="0 1 2" JOBS=8 VARIANTS="" MAP_DEPTHS="3 12" bash ablations.sh   # only the map over depths (W=32)
#   python results/summarize.py --ablations out/ablations  # the table of RESULTS.md, averaged over seeds
#
# How far the finding reaches (RESULTS.md): variants named in VARIANTS, evaluated on every test difficulty
#   forgetting: RL from the main recipe's SWA + SFT ("main"), changed: rl_easy10 (10% k = 4 prompts in RL), rl_kl0.05
#   discovery, from 0% carry-forward SFT data: carry0_g32 (group of 32), carry0_temp1.5, carry0_klbase (KL anchor to the
#     base model), carry0_sft50 (50 SFT steps); and the hint: carry1, carry3, carry5 (1%, 3%, 5% carry-forward in the SFT data)
#   SEEDS="0 1 2" JOBS=15 VARIANTS="main rl_easy10 rl_kl0.05 carry0 carry0_g32 carry0_temp1.5 carry0_klbase carry0_sft50 carry1 carry3 carry5" bash ablations.sh
#   python results/summarize.py --reach out/ablations
set -euo pipefail
cd "$(dirname "$0")"
SEEDS=${SEEDS:-0}
SFT_STEPS=${SFT_STEPS:-300}
RL_STEPS=${RL_STEPS:-100}
MAP_WINDOWS=${MAP_WINDOWS:-}
MAP_DEPTHS=${MAP_DEPTHS:-}  # e.g. "3 12": each depth first pretrains its own base model (build_base_model.py)
BASE_STEPS=${BASE_STEPS:-8000}  # pretraining steps of those base models (base_model/ had 8000)
VARIANTS=${VARIANTS-carry0 carry30 sinks4 hybrid_layer0_full window48}  # which ablations to run ("" for none)
OUT=${OUT:-out/ablations}
JOBS=${JOBS:-1}
EVAL_BATCH=${EVAL_BATCH:-64}  # sequences per generate call in evaluate.py; 256 on a GPU
EVAL_SIZE=${EVAL_SIZE:-}  # the first N problems of each test set and RL eval file (a quick check of the script); default all
DEVICE=${DEVICE:-$(python -c "import torch; print('cuda' if torch.cuda.is_available() else 'cpu')")}
source ./stages.sh

# the data set is fixed (seed 0) for every seed: a seed changes the training order and the sampling
for share in 0 0.01 0.03 0.05 0.3; do  # the carry-forward share of the SFT data (default 0.1)
  stage "$OUT/data_carry$share/sft.jsonl" python -m data.synthetic --out "$OUT/data_carry$share" --seed 0 --steps 4,8,12 --pad 2 \
    --carry-share "$share" --rl-steps 8,12 --n-sft 20000 --n-val 512 --n-rl 0 --n-test 0
done
# RL prompts with 10% easy ones (k = 4, where SWA + SFT already succeeds) beside the RL difficulties 8 and 12
stage "$OUT/data_rl_easy10/rl.jsonl" python -m data.synthetic --out "$OUT/data_rl_easy10" --seed 0 --steps 4,8,12 --pad 2 \
  --rl-steps 4,8,12 --rl-weights 1,4.5,4.5 --n-sft 0 --n-val 512 --n-rl 4096 --n-test 0

depth_chain() {  # depth_chain LAYERS: pretrain a full-attention base model of that depth, then SWA + SFT from it per seed
  local layers=$1 d="$OUT/depth/layers$1" seed
  # the stage's output is the pretraining checkpoint, so that a build cut off mid-run resumes from it
  stage "$d/build/pretrain.pt" python build_base_model.py --layers "$layers" --steps "$BASE_STEPS" --device "$DEVICE" \
    --out "$d/base" --work "$d/build"
  for seed in $SEEDS; do
    stage "$d/seed$seed/swa_sft.pt" python sft.py --model "$d/base" --window 32 --max-steps "$SFT_STEPS" --seed "$seed" \
      --device "$DEVICE" --out "$d/seed$seed/swa_sft.pt"
  done
}
depth=()
for layers in $MAP_DEPTHS; do  # first: pretraining is the longest chain
  chain "depth_layers$layers" depth_chain "$layers"
  depth+=("$OUT/depth/layers$layers/base")
  for seed in $SEEDS; do depth+=("$OUT/depth/layers$layers/seed$seed/swa_sft.pt"); done
done

sft_rl() {  # sft_rl DIR SEED SFT-ARGS...: SWA + SFT, then SWA + SFT + RL
  local d=$1 seed=$2; shift 2
  stage "$d/swa_sft.pt" python sft.py --max-steps "$SFT_STEPS" --seed "$seed" --device "$DEVICE" --out "$d/swa_sft.pt" "$@"
  stage "$d/swa_rl.pt" python rl.py --model "$d/swa_sft.pt" --max-steps "$RL_STEPS" --lr 2e-4 --mask-truncated --seed "$seed" \
    --eval-every "$RL_STEPS" ${EVAL_SIZE:+--eval-size "$EVAL_SIZE"} --device "$DEVICE" --out "$d/swa_rl.pt"
}
arm() {  # arm NAME SFT-ARGS...: one chain per seed, if NAME is in VARIANTS
  local name=$1 seed; shift
  [[ " $VARIANTS " == *" $name "* ]] || return 0
  for seed in $SEEDS; do
    chain "${name}_seed$seed" sft_rl "$OUT/$name/seed$seed" "$seed" "$@"
  done
}
arm main --window 32
arm carry0 --window 32 --data "$OUT/data_carry0/sft.jsonl" --eval-data "$OUT/data_carry0/val.jsonl"
arm carry0_sft50 --window 32 --data "$OUT/data_carry0/sft.jsonl" --eval-data "$OUT/data_carry0/val.jsonl" --max-steps 50
arm carry1 --window 32 --data "$OUT/data_carry0.01/sft.jsonl" --eval-data "$OUT/data_carry0.01/val.jsonl"
arm carry3 --window 32 --data "$OUT/data_carry0.03/sft.jsonl" --eval-data "$OUT/data_carry0.03/val.jsonl"
arm carry5 --window 32 --data "$OUT/data_carry0.05/sft.jsonl" --eval-data "$OUT/data_carry0.05/val.jsonl"
arm carry30 --window 32 --data "$OUT/data_carry0.3/sft.jsonl" --eval-data "$OUT/data_carry0.3/val.jsonl"
arm sinks4 --window 32 --sinks 4
arm hybrid_layer0_full --window 32 --full-layers 0
arm window48 --window 48

map=()
for window in $MAP_WINDOWS; do  # its own checkpoints: the window48 arm may be training its SFT at the same time
  for seed in $SEEDS; do
    d="$OUT/map/window$window/seed$seed"
    chain "map_window${window}_seed$seed" stage "$d/swa_sft.pt" python sft.py --window "$window" --max-steps "$SFT_STEPS" \
      --seed "$seed" --device "$DEVICE" --out "$d/swa_sft.pt"
    map+=("$d/swa_sft.pt")
  done
done
wait_chains

declare -A from_of=()
rl_variant() {  # rl_variant NAME FROM RL-ARGS...: RL (only) from the SWA + SFT checkpoints of variant FROM, if NAME is in VARIANTS
  local name=$1 from=$2 seed; shift 2
  [[ " $VARIANTS " == *" $name "* ]] || return 0
  if [[ " $VARIANTS " != *" $from "* ]]; then echo "error: VARIANTS has $name but not $from, whose SWA + SFT it starts from" >&2; exit 2; fi
  for seed in $SEEDS; do
    chain "${name}_seed$seed" stage "$OUT/$name/seed$seed/swa_rl.pt" python rl.py --model "$OUT/$from/seed$seed/swa_sft.pt" \
      --max-steps "$RL_STEPS" --lr 2e-4 --mask-truncated --seed "$seed" --eval-every "$RL_STEPS" ${EVAL_SIZE:+--eval-size "$EVAL_SIZE"} --device "$DEVICE" \
      --out "$OUT/$name/seed$seed/swa_rl.pt" "$@"
  done
  from_of[$name]=$from
}
rl_variant rl_easy10 main --data "$OUT/data_rl_easy10/rl.jsonl" --eval-data "$OUT/data_rl_easy10/val.jsonl"
rl_variant rl_kl0.05 main --kl-beta 0.05
rl_variant carry0_g32 carry0 --group-size 32
rl_variant carry0_temp1.5 carry0 --temperature 1.5
rl_variant carry0_klbase carry0 --kl-beta 0.1 --kl-ref base_model
wait_chains

# the evaluations are independent too: one per variant, every test difficulty. Each file holds SWA + SFT and SWA + SFT + RL:
# the SWA + SFT models also with carry-forward forced (their ceiling); an RL-only variant's the ones it started from, free only
for v in $VARIANTS; do
  if [ -n "${from_of[$v]:-}" ]; then models=("$OUT/${from_of[$v]}"/seed*/swa_sft.pt "$OUT/$v"/seed*/swa_rl.pt) styles=(free)
  else models=("$OUT/$v"/seed*/swa_{sft,rl}.pt) styles=(free carry); fi
  chain "eval_$v" stage "$OUT/eval_$v.json" python evaluate.py --batch-size "$EVAL_BATCH" ${EVAL_SIZE:+--eval-size "$EVAL_SIZE"} --save-completions \
    --model "${models[@]}" --force-style "${styles[@]}" --device "$DEVICE" --out "$OUT/eval_$v"
done
if [ ${#map[@]} -gt 0 ]; then
  chain map stage "$OUT/map.json" python evaluate.py --batch-size "$EVAL_BATCH" ${EVAL_SIZE:+--eval-size "$EVAL_SIZE"} --save-completions --model "${map[@]}" --force-style free carry lookback --device "$DEVICE" \
    --out "$OUT/map"
fi
if [ ${#depth[@]} -gt 0 ]; then  # each base model at full attention (did it learn both styles?) and its SWA + SFT models
  chain depth stage "$OUT/depth.json" python evaluate.py --batch-size "$EVAL_BATCH" ${EVAL_SIZE:+--eval-size "$EVAL_SIZE"} --save-completions --model "${depth[@]}" --force-style free carry lookback \
    --device "$DEVICE" --out "$OUT/depth"
fi
wait_chains
first_table() { awk '/^\|/{p=1} p && !/^\|/{exit} p' "$1"; }
for v in $VARIANTS; do echo "$v:"; first_table "$OUT/eval_$v.md"; done
if [ ${#map[@]} -gt 0 ]; then echo; first_table "$OUT/map.md"; fi
if [ ${#depth[@]} -gt 0 ]; then echo; first_table "$OUT/depth.md"; fi
