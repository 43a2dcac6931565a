#!/usr/bin/env bash
# The GPU measurements of docs/performance.md in one go, on one CUDA machine with photodialog
# installed (no download: every model is random weights from written-out configs or the tiny preset).
#   scripts/gpu-benchmarks.sh OUT_DIR
# Each step has its own time limit, so one that hangs or runs out of memory does not cost the rest;
# every JSON result lands in OUT_DIR, every output in OUT_DIR/gpu-benchmarks.log.
set -u
out=${1:?usage: scripts/gpu-benchmarks.sh OUT_DIR}
mkdir -p "$out"
photodialog=${PHOTODIALOG:-photodialog}
export PYTHONUNBUFFERED=1

log=$out/gpu-benchmarks.log
step() {  # step NAME SECONDS COMMAND...: run with a limit, append to the log, keep going on failure
  local name=$1 limit=$2; shift 2
  local start=$SECONDS
  echo "== $name: $*" | tee -a "$log"
  timeout "$limit" "$@" > "$out/step.log" 2>&1
  local rc=$?
  tail -n 8 "$out/step.log"; cat "$out/step.log" >> "$log"; rm -f "$out/step.log"
  echo "   rc=$rc in $((SECONDS - start)) s" | tee -a "$log"
}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 | tee "$log"
step paper-step 200 $photodialog bench step --preset paper --random-weights --out "$out/paper-step.json"
step bridge-cuda 60 $photodialog bench bridge --device cuda --out "$out/bridge-cuda.json"
step tiny-step-cuda 60 $photodialog bench step --device cuda --out "$out/tiny-step-cuda.json"
scratch=$(mktemp -d); world=$scratch/world; run=$scratch/tiny-run
step synth 30 $photodialog data synth --out "$world" --dialogues 600 --quiet
step train-cuda 100 $photodialog train --config configs/tiny-e2e.yaml --out "$run" --no-progress \
  data.path="$world" max_steps=300
cp "$run/metrics.jsonl" "$out/tiny-train-metrics.jsonl" 2>/dev/null
step chat-cuda 40 $photodialog chat --checkpoint "$run" --device cuda --message "look at my red cat" --json
step chat-bench-cuda 80 $photodialog bench chat --device cuda --out "$out/chat-cuda.json"
step paper-step-no-checkpointing 120 $photodialog bench step --preset paper --random-weights --no-gradient-checkpointing \
  --out "$out/paper-step-no-checkpointing.json"
step paper-step-b16-s512 150 $photodialog bench step --preset paper --random-weights --no-gradient-checkpointing \
  --batch-size 16 --seq-len 512 --image-targets 4 --out "$out/paper-step-b16-s512.json"
