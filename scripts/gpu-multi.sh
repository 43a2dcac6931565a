#!/usr/bin/env bash
# FSDP and DeepSpeed ZeRO-2 on GPUs: the kill -9 / --resume equality tests of
# tests/training/test_sharded_engines.py (CI runs them on two CPU processes over gloo) on CUDA
# processes over NCCL, with photodialog and its [test,datasets,deepspeed] extras installed.
#
#   scripts/gpu-multi.sh OUT_DIR      # ~5 min; needs 2 or more GPUs for the NCCL run
#
# With fewer than 2 GPUs, two NCCL processes cannot share one device ("Duplicate GPU detected"):
# the tests then run on CPU processes as in CI (CUDA hidden), and the log says so.
set -u
out=${1:?usage: scripts/gpu-multi.sh OUT_DIR}
mkdir -p "$out"
python=${PYTHON:-python3}
log=$out/gpu-multi.log
: > "$log"
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 || echo "no nvidia-smi"; } | tee -a "$log"
gpus=$($python -c "import torch; print(torch.cuda.device_count())" 2>/dev/null || echo 0)
$python -c "import torch, accelerate; print('torch', torch.__version__, 'accelerate', accelerate.__version__)" 2>&1 | tee -a "$log"
$python -c "import deepspeed; print('deepspeed', deepspeed.__version__)" 2>&1 | tee -a "$log"
if [ "$gpus" -ge 2 ]; then
  echo "== $gpus GPUs: the engines run on CUDA_VISIBLE_DEVICES=0,1 (NCCL)" | tee -a "$log"
  export CUDA_VISIBLE_DEVICES=0,1
else
  echo "== $gpus GPU(s): fewer than 2, the engines run on CPU processes (gloo), as in CI" | tee -a "$log"
  export CUDA_VISIBLE_DEVICES=""
fi
start=$SECONDS
timeout 900 $python -m pytest tests/training/test_sharded_engines.py -q -p no:cacheprovider --durations=0 \
  --junitxml="$out/gpu-multi.xml" 2>&1 | tee -a "$log"
echo "   rc=${PIPESTATUS[0]} in $((SECONDS - start)) s" | tee -a "$log"
