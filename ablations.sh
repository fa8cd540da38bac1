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
DEVICE=${DEVICE:-$(python -c "import torch; print('cuda' if torch.cuda.is_available() else 'cpu')")}
source ./stages.sh

# the data set is fixed (seed 0) for every seed: a seed changes the training order and the sampling
for share in 0 0.3; do  # the carry-forward share of the SFT data (default 0.1)
  stage "$OUT/data_carry$share/sft.jsonl" python -m data.synthetic --out "$OUT/data_carry$share" --seed 0 --steps 4,8,12 --pad 2 \
    --carry-share "$share" --rl-steps 8,12 --n-sft 20000 --n-val 512 --n-rl 0 --n-test 0
done

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
    --eval-every "$RL_STEPS" --device "$DEVICE" --out "$d/swa_rl.pt"
}
ckpts=()
arm() {  # arm NAME SFT-ARGS...: one chain per seed, if NAME is in VARIANTS
  local name=$1 seed; shift
  [[ " $VARIANTS " == *" $name "* ]] || return 0
  for seed in $SEEDS; do
    chain "${name}_seed$seed" sft_rl "$OUT/$name/seed$seed" "$seed" "$@"
    ckpts+=("$OUT/$name/seed$seed/swa_sft.pt" "$OUT/$name/seed$seed/swa_rl.pt")
  done
}
arm carry0 --window 32 --data "$OUT/data_carry0/sft.jsonl" --eval-data "$OUT/data_carry0/val.jsonl"
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

# the evaluations are independent too
if [ ${#ckpts[@]} -gt 0 ]; then
  chain arms stage "$OUT/arms.json" python evaluate.py --batch-size "$EVAL_BATCH" --model "${ckpts[@]}" --force-style free carry --device "$DEVICE" --out "$OUT/arms"
fi
if [ ${#map[@]} -gt 0 ]; then
  chain map stage "$OUT/map.json" python evaluate.py --batch-size "$EVAL_BATCH" --model "${map[@]}" --force-style free carry lookback --device "$DEVICE" \
    --out "$OUT/map"
fi
if [ ${#depth[@]} -gt 0 ]; then  # each base model at full attention (did it learn both styles?) and its SWA + SFT models
  chain depth stage "$OUT/depth.json" python evaluate.py --batch-size "$EVAL_BATCH" --model "${depth[@]}" --force-style free carry lookback \
    --device "$DEVICE" --out "$OUT/depth"
fi
wait_chains
first_table() { awk '/^\|/{p=1} p && !/^\|/{exit} p' "$1"; }
if [ ${#ckpts[@]} -gt 0 ]; then first_table "$OUT/arms.md"; fi
if [ ${#map[@]} -gt 0 ]; then echo; first_table "$OUT/map.md"; fi
if [ ${#depth[@]} -gt 0 ]; then echo; first_table "$OUT/depth.md"; fi
