"""Pack a folder of photos into one compact file of fixed-size square crops.

A GPU run carries at most 64 MiB, so the 14k training photos travel as WebP-encoded
centre crops in a single .npz: `python -m training.pack --size 144 --out packed/train144.npz`.
The training loop decodes the whole pack once into memory (or GPU memory) and takes
random crops, flips and rescales from there.
"""

from __future__ import annotations

import argparse
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from training.data import list_images

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "train"


def centre_crop(bgr: np.ndarray, size: int) -> np.ndarray:
    h, w = bgr.shape[:2]
    s = size / min(h, w)
    bgr = cv2.resize(bgr, (max(size, round(w * s)), max(size, round(h * s))), interpolation=cv2.INTER_AREA)
    h, w = bgr.shape[:2]
    y, x = (h - size) // 2, (w - size) // 2
    return bgr[y : y + size, x : x + size]


def pack(folder: Path, out: Path, size: int, quality: int) -> int:
    blobs = []
    names = []
    for path in list_images(folder):
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            print(f"skipping unreadable {path}", file=sys.stderr)
            continue
        ok, buf = cv2.imencode(".webp", centre_crop(bgr, size), [cv2.IMWRITE_WEBP_QUALITY, quality])
        if ok:
            blobs.append(buf.ravel())
            names.append(str(path.relative_to(folder)))
    offsets = np.cumsum([0] + [len(b) for b in blobs]).astype(np.int64)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, data=np.concatenate(blobs), offsets=offsets, names=np.array(names), size=size)
    return len(blobs)


def load_pack(path: Path, workers: int = 1) -> tuple[np.ndarray, list[str]]:
    """-> (N, size, size, 3) uint8 RGB images and their names (decoded on `workers` threads)."""
    z = np.load(path)
    data, off, names = z["data"], z["offsets"], [str(n) for n in z["names"]]

    def decode(i: int) -> np.ndarray:
        return cv2.imdecode(data[off[i] : off[i + 1]], cv2.IMREAD_COLOR)[..., ::-1]

    with ThreadPoolExecutor(workers) as ex:
        imgs = list(ex.map(decode, range(len(names))))
    return np.stack(imgs), names


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--size", type=int, default=144)
    ap.add_argument("--quality", type=int, default=85)
    a = ap.parse_args(argv)
    n = pack(a.data, a.out, a.size, a.quality)
    print(f"packed {n} images into {a.out} ({a.out.stat().st_size / 2**20:.1f} MiB)")


if __name__ == "__main__":
    main()
