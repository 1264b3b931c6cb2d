#!/usr/bin/env bash
# Rebuild everything issue 22's training needs outside the repository, in one command; every
# step skips or resumes what is already there, so a rerun after an interruption continues.
#
#   training/prepare_data.sh [CACHE_DIR] [MIRRORS_DIR]     (defaults: /work/cache, /work/.mirror)
#
# MIRRORS_DIR must hold the 15 repositories ../shared/data/extra/README.md lists (the session's
# `fetch` tool brings them: github:<owner>/<name>); build_extra.py says which are missing.
# Writes: CACHE_DIR/extra (the 33,284 extra training photos, ~180 MB), CACHE_DIR/val (the
# validation photos as links), CACHE_DIR/feat_mnv2{,_val} (MobileNetV2 features, ~7.3 GB) and,
# with TEACHER=1, CACHE_DIR/feat_lite2{,_val} (EfficientNet-Lite2 features of the same crops).
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE=${1:-/work/cache}
MIRRORS=${2:-/work/.mirror}
SHARED=$(cd .. && pwd)/shared/data
THREADS=${THREADS:-2}
mkdir -p "$CACHE"
python "$SHARED/extra/build_extra.py" --mirrors "$MIRRORS" --out "$CACHE/extra"
python -m training.feature_cache validation --out "$CACHE/val" --extra "$CACHE/extra/train"
# whole sources held out of training (train_cached --hold-out-sources the same): the validation that chooses
python -m training.feature_cache validation --out "$CACHE/val_heldout" --extra "$CACHE/extra/train" \
    --hold-out-sources pedestrian_streets,houses_realestate,raccoon
python -m training.feature_cache build --out "$CACHE/feat_mnv2" --extra "$CACHE/extra/train" --threads "$THREADS"
python -m training.feature_cache build --out "$CACHE/feat_mnv2_val" --extra "$CACHE/extra/train" --split val \
    --views 1 --degrade 0 --threads "$THREADS"
if [ "${TEACHER:-0}" = 1 ]; then
  python -m training.feature_cache build --encoder efficientnet_lite2 --strides 4,8,16,32 --out "$CACHE/feat_lite2" \
      --extra "$CACHE/extra/train" --threads "$THREADS"
  python -m training.feature_cache build --encoder efficientnet_lite2 --strides 4,8,16,32 \
      --out "$CACHE/feat_lite2_val" --extra "$CACHE/extra/train" --split val --views 1 --degrade 0 --threads "$THREADS"
fi
echo "ready: $CACHE"
