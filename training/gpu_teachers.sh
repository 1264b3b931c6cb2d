#!/usr/bin/env bash
# One prepared GPU run (device tool) for the teachers and the distilled student:
#   1. the Pix2Pix teacher (U-Net, 64 filters, 7 downsamplings for 128 crops - pix2pix's
#      own unet_128 - with the 70x70 PatchGAN, GAN + L1 x 100) and the fusion teacher
#      (encoder + Inception-ResNet-v2 from timm + fusion + decoder, MSE) train side by side
#      on the one GPU for TEACHER_MIN minutes each, batches made on the GPU, bf16 autocast;
#   2. students distil from the Pix2Pix teacher for STUDENT_MIN minutes, side by side on the
#      same batches: from the shipped student's checkpoint with ground truth only (the
#      control), and with 30 % / 60 % of the target from the teacher; meanwhile the CPUs
#      export both teachers to ONNX and evaluate them on the eval photos with the runtime.
# The teachers' weights (100+ MB) cannot come back (16 MiB a file): their evaluation, logs,
# cards and contact sheets do; the students' checkpoints (4 MB each) come back.
#
# Carried (ignored paths, 65 MB with the tree): packed/train144q75.npz (python -m training.pack
# --size 144 --quality 75), packed/eval (../shared/data/eval; PNGs as lossless WebP),
# INIT (default packed/student_init.pt, a student checkpoint to start from).
#   run(command="bash training/gpu_teachers.sh", carry=[...those three...], timeout_s=...)
# CPU smoke test: CPU_TEST=1 bash training/gpu_teachers.sh
set -uo pipefail
OUT=${OUT:-/tmp/gpu_out}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
TEACHER_MIN=${TEACHER_MIN:-3.3}
STUDENT_MIN=${STUDENT_MIN:-3.3}
INIT=${INIT:-packed/student_init.pt}
VARIANTS=${VARIANTS:-w16a0.5d5k0i,w16a0.5d5k0.3i,w16a0.5d5k0.6i}
INIT_LR=${INIT_LR:-0.5}
PACK=${PACK:-packed/train144q75.npz}
EVAL=${EVAL:-packed/eval}
RUNS=${RUNS:-/tmp/teacher_runs}
EXTRA=(); SEXTRA=(); FUSION_BACKBONE=inception_resnet_v2; BATCH=64; SBATCH=256
if [ "${CPU_TEST:-0}" = 1 ]; then
  EXTRA=(--set data.limit=64 --set train.device=cpu --set model.ngf=8)
  SEXTRA=(--limit 64 --device cpu); FUSION_BACKBONE=tiny; BATCH=4; SBATCH=8
fi
mkdir -p "$RUNS"
{
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>/dev/null || echo "no nvidia-smi"
python3 -c "import torch, onnxruntime; print('torch', torch.__version__, 'ort', onnxruntime.__version__)"
date +%T
common=(--set data.pack="$PACK" --set data.images="" --set data.crop=128 --set data.device_batches=true
        --set train.amp=true --set train.minutes="$TEACHER_MIN" --set train.batch=$BATCH
        --set train.log_every=100 --set train.ckpt_every=100000000 --set train.val_batches=4)
python3 -m training.train_teacher --config training/configs/pix2pix.toml --out "$RUNS/pix2pix" \
  "${common[@]}" --set model.depth=7 "${EXTRA[@]}" > "$RUNS/pix2pix.log" 2>&1 &
P1=$!
fusion_extra=("${EXTRA[@]}")
if [ "${CPU_TEST:-0}" = 1 ]; then fusion_extra=(--set data.limit=64 --set train.device=cpu); fi
python3 -m training.train_teacher --config training/configs/fusion.toml --out "$RUNS/fusion" \
  "${common[@]}" --set model.backbone="$FUSION_BACKBONE" --set model.pretrained=false "${fusion_extra[@]}" \
  > "$RUNS/fusion.log" 2>&1 &
P2=$!
wait $P1; echo "pix2pix teacher exit $?"; wait $P2; echo "fusion teacher exit $?"
tail -n 3 "$RUNS/pix2pix.log" "$RUNS/fusion.log"
date +%T
python3 -m training.train_student --pack "$PACK" --minutes "$STUDENT_MIN" --batch $SBATCH \
  --teacher "$RUNS/pix2pix/last.pt" "$RUNS/fusion/last.pt" --init "$INIT" --init-lr-scale "$INIT_LR" \
  --variants "$VARIANTS" --out "$OUT/students" "${SEXTRA[@]}" \
  > "$RUNS/students.log" 2>&1 &
P3=$!
for t in pix2pix fusion; do
  side=192; [ $t = pix2pix ] && side=256
  python3 -m training.export "$RUNS/$t/last.pt" --out "$RUNS/$t/teacher_$t.onnx" --short-side $side \
    && python3 -m training.evaluate --data "$EVAL" --model "$RUNS/$t/teacher_$t.onnx" --threads 12 \
         --sheet "$RUNS/$t/sheet_$t.png" --json "$RUNS/$t/eval_$t.json"
done
wait $P3; echo "students exit $?"
date +%T
} 2>&1 | tee "$OUT/run.log"
# at most 8 files come back: the students' folder (checkpoints + report), the log, and one
# archive with the students' log and the teachers' logs, cards, evaluations and sheets
tar -czf "$OUT/teachers.tgz" -C "$RUNS" --exclude='*.pt' --exclude='*.onnx' --exclude='*.tmp' .
ls -la "$OUT" "$OUT/students"
