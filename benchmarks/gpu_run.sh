#!/usr/bin/env bash
# The prepared GPU run for the NVIDIA engines (device tool, one call, well under 10 minutes):
# the GPU-marked tests, then benchmarks.gpu_speed (FP16 vs FP32; model-only batch 1 and 8
# for FP32 eager, FP16 eager, FP16 compiled and TensorRT when importable; end to end at
# 480p/720p/1080p beside transcode-only on a synthetic clip). Results in $OUT.
#
# The GPU machine has no PyAV: carry it as a wheel (Python 3.12 there). Once, here:
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 -d .whl av typer
# then: run(command="bash benchmarks/gpu_run.sh", carry=[".whl"], timeout_s=300)
set -uo pipefail
OUT=${OUT:-/tmp/gpu_out}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:.
{
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
fi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
python3 -c "import torch, onnxruntime; print('torch', torch.__version__, 'ort', onnxruntime.__version__)"
date +%T
timeout ${SPEED_S:-170} python3 -m benchmarks.gpu_speed --clip synthetic --max-frames 300 --heights 1080 720 480 \
  --video-repeats 2 --out "$OUT/gpu_speed.json"
date +%T
timeout ${TESTS_S:-60} python3 -m pytest -q -m gpu tests/test_engines.py -p no:cacheprovider
date +%T
} 2>&1 | tee "$OUT/run.log"
ls -la "$OUT"
