"""Contact sheet of real black-and-white material (no ground truth): input | model 1 | model 2 ...

    python -m training.archival_sheet --inputs ../shared/data/archival/old_photos \
        ../shared/data/archival/street_film_early.mp4 --models old.onnx streamcolor/models/student.onnx \
        --labels "previous default" "new default" --out runs/archival.png

Photos are taken as they are; from each video, --frames frames evenly spaced (decoded with
PyAV). Every model colorizes the same luma with the runtime's own colorizer on ONNX Runtime,
so the sheet shows what users get; rows are 200 pixels high, a label on each column.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from streamcolor import color
from streamcolor.colorizer import Colorizer
from streamcolor.engines.registry import create_engine
from streamcolor.model import load_card
from training.compare import label
from training.data import IMAGE_SUFFIXES, list_images

ROW = 200


def gray_frames(path: Path, frames: int) -> list[tuple[str, np.ndarray]]:
    """-> [(label, (H, W) uint8 full-range gray)] from a photo, a folder of photos or a video."""
    if path.is_dir():
        return [item for p in list_images(path) for item in gray_frames(p, frames)]
    if path.suffix.lower() in IMAGE_SUFFIXES:
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        return [(path.name, color.rgb8_to_gray8(bgr[..., ::-1]))] if bgr is not None else []
    import av

    with av.open(str(path)) as c:
        total = c.streams.video[0].frames or 0
        decoded = [f.to_ndarray(format="gray") for f in c.decode(video=0)]
    total = len(decoded) or total
    picks = np.linspace(0, total - 1, frames).round().astype(int) if total else []
    return [(f"{path.name} #{i}", decoded[i]) for i in picks]


def sheet(inputs: list[Path], models: list[Path], labels: list[str], frames: int) -> np.ndarray:
    colorizers = [Colorizer(create_engine("onnx", load_card(m), None), load_card(m)) for m in models]
    rows = []
    for name, gray in (item for p in inputs for item in gray_frames(p, frames)):
        w = gray.shape[1] * ROW // gray.shape[0]
        cells = [label(cv2.resize(np.repeat(gray[..., None], 3, 2), (w, ROW), interpolation=cv2.INTER_AREA), name)]
        for col, lab in zip(colorizers, labels):
            rgb = col.colorize_luma(gray, full_range=True)
            cells.append(label(cv2.resize(rgb, (w, ROW), interpolation=cv2.INTER_AREA), lab))
        rows.append(np.concatenate(cells, axis=1))
    width = max(r.shape[1] for r in rows)
    return np.concatenate([np.pad(r, ((0, 4), (0, width - r.shape[1]), (0, 0))) for r in rows], axis=0)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--inputs", type=Path, nargs="+", required=True, help="photos, folders of photos, videos")
    ap.add_argument("--models", type=Path, nargs="+", required=True)
    ap.add_argument("--labels", nargs="+", required=True)
    ap.add_argument("--frames", type=int, default=3, help="frames taken from each video")
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args(argv)
    if len(a.labels) != len(a.models):
        raise SystemExit(f"{len(a.models)} models but {len(a.labels)} labels")
    img = sheet(a.inputs, a.models, a.labels, a.frames)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(a.out), img[..., ::-1])
    print(f"wrote {a.out} ({img.shape[1]}x{img.shape[0]})")


if __name__ == "__main__":
    main()
