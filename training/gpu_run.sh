#!/usr/bin/env bash
# One prepared GPU run (device tool): train the student variants side by side, then time
# the trained networks model-only in PyTorch FP32/FP16 on that GPU. Results land in $OUT
# (at most 8 files come back: the checkpoints, report.json, model_speed.json, run.log).
set -uo pipefail
OUT=${OUT:-/tmp/gpu_out}; mkdir -p "$OUT"
MINUTES=${MINUTES:-5.5}
export PYTHONUNBUFFERED=1
{
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
python3 -m training.train_student --pack packed/train144.npz --minutes "$MINUTES" --batch 256 \
  --variants "${VARIANTS:-w16a0.5,w24a0.5,w24a1,w32a0.5}" --out "$OUT"
if [ "${SPEED:-1}" = 1 ]; then
  python3 -m training.gpu_model_speed --ckpt-dir "$OUT" --out "$OUT/model_speed.json" --seconds 60
fi
} 2>&1 | tee "$OUT/run.log"
ls -la "$OUT"
