#!/usr/bin/env bash
# One prepared GPU run (device tool) for issue 13's teachers on the ImageNet-pretrained
# MobileNetV2 and the students distilled from them:
#   1. the Pix2Pix teacher (pix2pix_mobilenet: U-Net on the pretrained encoder, L1 alone for the
#      first 30 %, then + 70x70 PatchGAN + perceptual loss on the pretrained features) and the
#      fusion teacher (conv encoder + the classifier's pooled features and class logits + fusion +
#      decoder, MSE) train side by side for TEACHER_MIN minutes each, batches made on the GPU;
#   2. students start from INIT (a CPU-trained MobileStudent checkpoint) and distil for
#      STUDENT_MIN minutes, side by side on the same batches, with archival degradations on the
#      input (DEGRADE): ground truth only (the control), 30 % from either teacher, and 30 % from
#      the Pix2Pix teacher with the whole-image cast loss (c1: measured on the CPU, it lowered the
#      validation cast and raised PSNR, but dulled the colours);
#      meanwhile the CPUs export both teachers and evaluate them on the VALIDATION photos
#      (never ../shared/data/eval: choosing there is how a +0.7 dB became -0.2 dB).
# Teachers' weights cannot come back (16 MiB a file); their logs, cards, evaluations and sheets
# do, and the students' checkpoints do.
#
# Carried (ignored paths): packed/train144q75.npz (python -m training.pack --size 144 --quality 75),
# packed/val (the validation photos: training/data.is_validation, PNG/JPEG), packed/mnv2.tflite
# (../shared/weights/tf2_mobilenet_v2_1.0_224_ptq.tflite), INIT (default packed/student_init.pt).
#   run(command="bash training/gpu_pretrained.sh", carry=[packed/...], timeout_s=...)
# CPU smoke test: CPU_TEST=1 bash training/gpu_pretrained.sh
set -uo pipefail
OUT=${OUT:-/tmp/gpu_out}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
TEACHER_MIN=${TEACHER_MIN:-3.5}
STUDENT_MIN=${STUDENT_MIN:-3.0}
INIT=${INIT:-packed/student_init.pt}
ARCH=${ARCH:-m16}
VARIANTS=${VARIANTS:-${ARCH}a0.5k0i,${ARCH}a0.5k0.3i,${ARCH}a0.5k0.3t1i,${ARCH}a0.5k0.3c1i}
PACK=${PACK:-packed/train144q75.npz}
VAL=${VAL:-packed/val}
WEIGHTS=${WEIGHTS:-packed/mnv2.tflite}
DEGRADE=${DEGRADE:-0.6}
RUNS=${RUNS:-/tmp/teacher_runs}
EXTRA=(); SEXTRA=(); BATCH=64; SBATCH=256; THREADS=12
if [ "${CPU_TEST:-0}" = 1 ]; then
  EXTRA=(--set data.limit=48 --set train.device=cpu --set model.width=8 --set train.threads=1)
  SEXTRA=(--limit 48 --device cpu --threads 1); BATCH=4; SBATCH=4; THREADS=1
fi
mkdir -p "$RUNS"
{
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>/dev/null || echo "no nvidia-smi"
python3 -c "import torch, onnxruntime; print('torch', torch.__version__, 'ort', onnxruntime.__version__)"
date +%T
common=(--set data.pack="$PACK" --set data.images="" --set data.crop=128 --set data.device_batches=true
        --set train.amp=true --set train.minutes="$TEACHER_MIN" --set train.batch=$BATCH
        --set train.log_every=100 --set train.ckpt_every=100000000 --set train.val_batches=4)
python3 -m training.train_teacher --config training/configs/pix2pix_mobilenet.toml --out "$RUNS/pix2pix" \
  "${common[@]}" --set model.weights="$WEIGHTS" --set loss.backbone_weights="$WEIGHTS" "${EXTRA[@]}" \
  > "$RUNS/pix2pix.log" 2>&1 &
P1=$!
fusion_extra=("${EXTRA[@]}")
if [ "${CPU_TEST:-0}" = 1 ]; then fusion_extra=(--set data.limit=48 --set train.device=cpu --set train.threads=1); fi
python3 -m training.train_teacher --config training/configs/fusion_mobilenet.toml --out "$RUNS/fusion" \
  "${common[@]}" --set model.pretrained="$WEIGHTS" "${fusion_extra[@]}" > "$RUNS/fusion.log" 2>&1 &
P2=$!
wait $P1; echo "pix2pix teacher exit $?"; wait $P2; echo "fusion teacher exit $?"
tail -n 3 "$RUNS/pix2pix.log" "$RUNS/fusion.log"
date +%T
python3 -m training.train_student --pack "$PACK" --minutes "$STUDENT_MIN" --batch $SBATCH --crop 128 \
  --teacher "$RUNS/pix2pix/last.pt" "$RUNS/fusion/last.pt" --init "$INIT" --init-lr-scale 0.3 \
  --backbone "$WEIGHTS" --degrade "$DEGRADE" --freeze-stride 4 --variants "$VARIANTS" --out "$OUT/students" \
  "${SEXTRA[@]}" > "$RUNS/students.log" 2>&1 &
P3=$!
for t in pix2pix fusion; do
  python3 -m training.export "$RUNS/$t/last.pt" --out "$RUNS/$t/teacher_$t.onnx" --short-side 192 \
    && python3 -m training.evaluate --data "$VAL" --model "$RUNS/$t/teacher_$t.onnx" --threads $THREADS \
         --sheet "$RUNS/$t/sheet_$t.png" --json "$RUNS/$t/val_$t.json"
done
wait $P3; echo "students exit $?"
date +%T
} 2>&1 | tee "$OUT/run.log"
cp "$RUNS/students.log" "$OUT/students/" 2>/dev/null
tar -czf "$OUT/teachers.tgz" -C "$RUNS" --exclude='*.pt' --exclude='*.onnx' --exclude='*.tmp' .
ls -la "$OUT" "$OUT/students"
