# Sourced by reproduce.sh and ablations.sh (after OUT and JOBS are set): stages that are skipped once
# they finished (or resumed, for a training stage cut off mid-run), and independent chains of stages
# run as parallel processes when JOBS > 1.
case $JOBS in ''|*[!0-9]*|0) echo "error: JOBS must be a positive integer, got '$JOBS'" >&2; exit 2 ;; esac

stage() {  # stage OUTPUT COMMAND...: run COMMAND unless it already completed (OUTPUT.done marks that)
  local target=$1; shift
  if [ -e "$target.done" ]; then echo "== $target done, skipped"; return; fi
  if [ -e "$target" ] && [[ $target == *.pt ]]; then
    # sft.py / rl.py / build_base_model.py save along the way: a stage cut off mid-run continues from its last checkpoint
    echo "== $* --resume"; "$@" --resume
  else
    echo "== $*"; "$@"
  fi
  touch "$target.done"
}

chain_pids=() chain_names=()
chain() {  # chain NAME COMMAND...: with JOBS=1 run COMMAND here; else in the background, output appended to $OUT/logs/NAME.log
  local name=$1; shift
  if [ "$JOBS" = 1 ]; then "$@"; return; fi
  if [ ${#chain_pids[@]} = 0 ]; then
    mkdir -p "$OUT/logs"
    trap 'trap - INT TERM; kill 0' INT TERM  # background jobs ignore Ctrl-C: stop them with the script
  fi
  while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n || true; done  # at most JOBS at a time; failures are read below
  echo "== chain $name started, log: $OUT/logs/$name.log"
  # a share of the cores each, so that JOBS processes do not oversubscribe the CPU; the log is appended
  # to, so that a resumed chain keeps the output of its earlier runs
  local threads=$(( $(nproc) / JOBS ))
  ( export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(( threads > 0 ? threads : 1 ))}; "$@" ) >> "$OUT/logs/$name.log" 2>&1 &
  chain_pids+=($!) chain_names+=("$name")
}

wait_chains() {  # wait for the background chains; fail, naming each failed chain and its log, if any failed
  local i failed=0
  for i in "${!chain_pids[@]}"; do
    if wait "${chain_pids[$i]}"; then echo "== chain ${chain_names[$i]} done"
    else echo "error: chain ${chain_names[$i]} failed, see $OUT/logs/${chain_names[$i]}.log" >&2; failed=1; fi
  done
  chain_pids=() chain_names=()
  return $failed
}
