"""Put several models' contact sheets side by side: gray | model 1 | model 2 | ... | truth.

    python -m training.compare --sheets teacher_pix2pix.png teacher_fusion.png student.png \
        --labels "Pix2Pix teacher" "fusion teacher" student --out compare.jpg

Each input is a sheet written by `training.evaluate --sheet` on the same folder (rows of
gray | ours | truth, 200 pixels high); the rows' geometry is recomputed from the folder's
photos, so sheets made on another machine (a lent GPU) line up with ones made here.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from training.data import list_images
from training.evaluate import DEFAULT_EVAL, sheet_rows

ROW = 200
GAP = 4


def panels(sheet: np.ndarray, widths: list[int]) -> list[list[np.ndarray]]:
    """-> per row [gray, ours, truth] cut out of an evaluate sheet."""
    out = []
    for r, w in enumerate(widths):
        strip = sheet[r * (ROW + GAP) : r * (ROW + GAP) + ROW, :w]
        out.append([strip[:, k * w // 3 : (k + 1) * w // 3] for k in range(3)])
    return out


def label(img: np.ndarray, text: str) -> np.ndarray:
    """White text with a dark outline. The outline is the same 1-pixel text drawn at the 8
    neighbouring offsets: OpenCV 5 spaces thicker strokes wider, so a thick black pass under a
    thin white one no longer lines up."""
    img = img.copy()
    for dx in (-1, 0, 1):
        for dy in (-1, 0, 1):
            if dx or dy:
                cv2.putText(img, text, (6 + dx, 20 + dy), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, text, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 1, cv2.LINE_AA)
    return img


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_EVAL, help="the folder the sheets were made from")
    ap.add_argument("--sheets", type=Path, nargs="+", required=True)
    ap.add_argument("--labels", nargs="+", required=True)
    ap.add_argument("--rows", type=int, default=8, help="rows of the sheets (as given to evaluate)")
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args(argv)
    if len(a.labels) != len(a.sheets):
        raise SystemExit("give one label per sheet")
    photos = list_images(a.data)
    widths = []
    for i in sheet_rows(len(photos), a.rows):
        h, w = cv2.imread(str(photos[i]), cv2.IMREAD_COLOR).shape[:2]
        widths.append(3 * w * ROW // h)
    cut = [panels(cv2.imread(str(s), cv2.IMREAD_COLOR), widths) for s in a.sheets]
    rows = []
    for r in range(len(widths)):
        cells = [label(cut[0][r][0], "gray")]
        cells += [label(c[r][1], name) for c, name in zip(cut, a.labels)]
        cells.append(label(cut[0][r][2], "truth"))
        rows.append(np.concatenate(cells, axis=1))
    width = max(row.shape[1] for row in rows)
    out = np.concatenate([np.pad(row, ((0, GAP), (0, width - row.shape[1]), (0, 0))) for row in rows])
    a.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(a.out), out, [cv2.IMWRITE_JPEG_QUALITY, 88])
    print(f"wrote {a.out} ({out.shape[1]}x{out.shape[0]})")


if __name__ == "__main__":
    main()
