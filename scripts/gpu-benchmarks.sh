#!/usr/bin/env bash
# The GPU measurements of docs/performance.md in one go, on one CUDA machine with photodialog
# installed (no download: every model is random weights from written-out configs or the tiny preset).
#
#   scripts/gpu-benchmarks.sh OUT_DIR             # on the GPU machine (~12 min on an H200)
#   scripts/gpu-benchmarks.sh --dry-run OUT_DIR   # the same steps on a CPU: paper-size commands at
#                                                 # stand-in sizes, tiny ones on the CPU (flags, flow, JSON)
#   scripts/gpu-benchmarks.sh --part 1 OUT_DIR    # only part 1 (~5 min: profile, before/after, MFU at 32);
#   scripts/gpu-benchmarks.sh --part 2 OUT_DIR    # the rest (~8 min), e.g. where one command may run 10 min
#
# Order = priority (a lease can end early): the profile of the paper step, the before/after in turns
# (in one process: the same model and batch, steps alternating; and again in a second round), MFU at
# the recipe's batch, torch.compile, a larger batch, then the tiny preset (profile, training with
# train.micro_batch_size=auto, chat). Each step has its own time limit, so one that hangs or runs out
# of memory does not cost the rest; every JSON result lands in OUT_DIR, every output in
# OUT_DIR/gpu-benchmarks.log, and OUT_DIR/summary.json + summary.md gather the numbers at the end.
set -u
dry=0; only=""
while [ $# -gt 1 ]; do
  case $1 in
    --dry-run) dry=1; shift ;;
    --part) only=$2; shift 2 ;;
    *) break ;;
  esac
done
out=${1:?usage: scripts/gpu-benchmarks.sh [--dry-run] OUT_DIR}
mkdir -p "$out"
photodialog=${PHOTODIALOG:-photodialog}
python=${PYTHON:-python3}
export PYTHONUNBUFFERED=1

if [ $dry = 1 ]; then
  paper="--preset paper --random-weights --standin-sizes --device cpu --threads 1 --batch-size 2 --seq-len 48 --steps 2 --warmup 1"
  tiny="--device cpu --threads 1 --batch-size 4 --steps 2 --warmup 1"
  device=cpu; steps=4; scale=2; compile_limit=60  # limits x2 (a CPU is slower); compiling on a CPU may hit its limit
else
  paper="--preset paper --random-weights"
  tiny="--device cuda"
  device=cuda; steps=300; scale=1; compile_limit=420
fi

log=$out/gpu-benchmarks${only:+-part$only}.log
: > "$log"
part=1
step() {  # step NAME SECONDS COMMAND...: run with a limit, append to the log, keep going on failure
  local name=$1 limit=$(( $2 * scale )); shift 2
  if [ -n "$only" ] && [ "$only" != "$part" ]; then return 0; fi
  local start=$SECONDS
  echo "== $name: $*" | tee -a "$log"
  timeout "$limit" "$@" > "$out/step.log" 2>&1
  local rc=$?
  tail -n 8 "$out/step.log"; cat "$out/step.log" >> "$log"; rm -f "$out/step.log"
  echo "   rc=$rc in $((SECONDS - start)) s" | tee -a "$log"
}

{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 || echo "no nvidia-smi"; } | tee -a "$log"
$python -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" 2>&1 | tee -a "$log"

# The recipe's effective batch is 32 (micro-batches of 4 with checkpointing in the shipped recipe);
# "b32" runs the 32 samples as one micro-batch without checkpointing, as train.micro_batch_size=auto
# picks on an H200 in the LoRA setting (~90 GB with both optimizers of the comparison).
b32="--batch-size 32 --seq-len 256 --image-targets 4 --no-gradient-checkpointing"
[ $dry = 1 ] && b32="--batch-size 4 --image-targets 2 --no-gradient-checkpointing"
# 1. Where the paper step's time goes (the recipe: 4 x 256, checkpointing on), then before/after in turns
#    in one process (the same model and batch, steps alternating) at the recipe's micro-batch and at 32.
step profile-paper 150 $photodialog bench step $paper --profile --out "$out/profile-paper.json"
step compare-recipe-1 180 $photodialog bench step $paper --compare-baseline --steps 7 --out "$out/compare-recipe-1.json"
step compare-b32-1 240 $photodialog bench step $paper $b32 --compare-baseline --steps 5 --out "$out/compare-b32-1.json"
# 2. MFU at the recipe's batch of 32 (full report: FLOPs per part, memory), then with torch.compile
#    (the first steps compile: more warmup).
step paper-step-b32 200 $photodialog bench step $paper $b32 --out "$out/paper-step-b32.json"
part=2
step paper-step-b32-compile $compile_limit $photodialog bench step $paper $b32 --compile --warmup 3 \
  --out "$out/paper-step-b32-compile.json"
# 3. The baseline's profile; a second round of the comparisons (a drift of the machine shows); the
#    recipe's micro-batch without checkpointing; the full report at the recipe's micro-batch; a larger batch.
step profile-paper-baseline 150 $photodialog bench step $paper --profile --baseline --out "$out/profile-paper-baseline.json"
step compare-recipe-2 180 $photodialog bench step $paper --compare-baseline --steps 7 --out "$out/compare-recipe-2.json"
step compare-b32-2 240 $photodialog bench step $paper $b32 --compare-baseline --steps 5 --out "$out/compare-b32-2.json"
step compare-no-checkpointing-1 180 $photodialog bench step $paper --compare-baseline --steps 7 --no-gradient-checkpointing \
  --out "$out/compare-no-checkpointing-1.json"
step paper-step 150 $photodialog bench step $paper --out "$out/paper-step.json"
step paper-step-b16-s512 200 $photodialog bench step $paper --no-gradient-checkpointing \
  --batch-size 16 --seq-len 512 --image-targets 4 --out "$out/paper-step-b16-s512.json"
# 6. The tiny preset: profile, a short training run with the micro-batch chosen from memory, a chat reply.
step profile-tiny 90 $photodialog bench step $tiny --profile --out "$out/profile-tiny-$device.json"
scratch=$(mktemp -d); world=$scratch/world; run=$scratch/tiny-run
step synth 60 $photodialog data synth --out "$world" --dialogues 300 --no-progress
step train-auto-micro-batch 240 $photodialog train --config configs/tiny-e2e.yaml --out "$run" --no-progress \
  data.path="$world" max_steps=$steps train.micro_batch_size=auto
cp "$run/metrics.jsonl" "$out/tiny-train-metrics.jsonl" 2>/dev/null
cp "$run/config.yaml" "$out/tiny-train-config.yaml" 2>/dev/null
step chat 60 $photodialog chat --checkpoint "$run" --device $device --message "look at my red cat" --json
# 7. The earlier GPU measurements of docs/performance.md: the bridge, the tiny step, a chat turn.
[ $dry = 1 ] && bridge="--captions 4 --llm-vocab 2000 --sd-vocab 3000 --width 64 --repeats 1 --no-tiny-step" || bridge=""
step bridge 60 $photodialog bench bridge --device $device $bridge --out "$out/bridge-$device.json"
step tiny-step 60 $photodialog bench step $tiny --out "$out/tiny-step-$device.json"
step chat-bench 80 $photodialog bench chat --device $device --out "$out/chat-$device.json"

# 8. One table of what came out.
$python - "$out" <<'EOF' 2>&1 | tee -a "$log"
import json, sys
from pathlib import Path

out = Path(sys.argv[1])
rows, summary = [], {}
def load(name):
    path = out / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None
for name in sorted(p.stem for p in out.glob("compare-*.json")):
    r = load(name)
    summary[name] = {k: r[k] for k in ("speedup_before_over_after", "model_flops_per_step")}
    for v in ("before", "after"):
        summary[name][v] = {"median_ms": r[v]["time"]["median_ms"], "mfu": r[v]["mfu"],
                            "peak_bytes": r[v]["memory"].get("peak_bytes", r[v]["memory"].get("peak_step_extra_bytes"))}
        rows.append(f"| {name} | {v} | {r[v]['time']['median_ms']:.1f} | {r[v]['mfu']} | "
                    f"{summary[name][v]['peak_bytes'] / 1e9:.1f} |")
for name in ("paper-step", "paper-step-b32", "paper-step-b32-compile", "paper-step-b16-s512"):
    r = load(name)
    if r:
        peak = r["memory"].get("peak_bytes", r["memory"].get("peak_step_extra_bytes"))
        summary[name] = {"median_ms": r["time"]["median_ms"], "mfu": r["mfu"], "hfu": r["hfu"], "peak_bytes": peak,
                         "batch": r["batch"]}
        rows.append(f"| {name} | after | {r['time']['median_ms']:.1f} | {r['mfu']} | {peak / 1e9:.1f} |")
# One PhotoChat epoch at the recipe's batch of 32: Table 1 gives 92,479 train turns in 10,286 dialogues;
# every turn but a dialogue's first is a sample: ~82,193 samples, 2,568 optimizer steps.
steps_per_epoch = (92_479 - 10_286) // 32
for name in ("paper-step-b32", "paper-step-b32-compile"):
    if name in summary:
        seconds = steps_per_epoch * summary[name]["median_ms"] / 1000
        summary[name]["photochat_epoch_minutes"] = round(seconds / 60, 1)
        rows.append(f"| {name} | one PhotoChat epoch ({steps_per_epoch} steps of 32) | {seconds / 60:.1f} min | | |")
for name in sorted(p.stem for p in out.glob("profile-*.json")):
    r = load(name)
    summary[name] = {"profiled_step_ms": r["profiled_step_ms"], "top": r["items"][:6], "host_syncs": r["host_syncs"]}
(out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
table = "| run | setting | step ms (median) | MFU | peak GB |\n| --- | --- | ---: | ---: | ---: |\n" + "\n".join(rows)
(out / "summary.md").write_text(table + "\n")
print(table)
EOF
echo "done: $out" | tee -a "$log"
