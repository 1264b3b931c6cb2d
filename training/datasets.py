"""Colour training data for the teachers: photos from a folder, a pack, or video files,
served as random (L, a*b*) crops by a torch Dataset (so DataLoader workers and
DistributedSampler apply).

Tensors: l (1, H, W) float32 = (L* - 50) / 50, ab (2, H, W) float32 = a*b* / AB_SCALE,
the model card's conventions. Near-gray photos (mean chroma below min_chroma a*b* units:
scans of black-and-white prints, sepia) teach nothing about colour and are skipped.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from streamcolor import color
from training.data import is_validation, list_images
from training.teachers import AB_SCALE


def video_frames(path: Path, stride: int = 10, limit: int = 0) -> list[np.ndarray]:
    """Every stride-th frame of a video as (H, W, 3) uint8 RGB."""
    import av

    out = []
    with av.open(str(path)) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i % stride == 0:
                out.append(f.to_ndarray(format="rgb24"))
                if limit and len(out) >= limit:
                    break
    return out


def gather(
    images: str | Path | None = None,
    pack: str | Path | None = None,
    videos: list[str | Path] | None = None,
    frame_stride: int = 10,
    limit: int = 0,
) -> tuple[list, list[str]]:
    """-> (items, names): items are image paths (read lazily) or RGB uint8 arrays."""
    items: list = []
    names: list[str] = []
    if images:
        paths = list_images(Path(images))
        items += paths
        names += [str(p.relative_to(images)) for p in paths]
    if pack:
        from training.pack import load_pack

        arrays, pack_names = load_pack(Path(pack), workers=4)
        items += list(arrays)
        names += pack_names
    for v in videos or []:
        frames = video_frames(Path(v), frame_stride)
        items += frames
        names += [f"{Path(v).name}#{i * frame_stride}" for i in range(len(frames))]
    if limit:
        items, names = items[:limit], names[:limit]
    if not items:
        raise SystemExit("no training images: give data.images, data.pack or data.videos")
    return items, names


def split(items: list, names: list[str], fraction: float = 0.03) -> tuple[tuple[list, list], tuple[list, list]]:
    """The fixed validation split (training/data.is_validation: by a hash of the name).
    Frames of one video all go to one side (split by the video's name)."""
    train, val = ([], []), ([], [])
    for item, name in zip(items, names):
        side = val if is_validation(name.split("#")[0], fraction) else train
        side[0].append(item)
        side[1].append(name)
    return train, val


class ColorCrops(torch.utils.data.Dataset):
    def __init__(self, items: list, names: list[str], crop: int, train: bool, min_chroma: float = 3.0, seed: int = 0):
        self.items, self.names = items, names
        self.crop, self.train, self.min_chroma, self.seed = crop, train, min_chroma, seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.items)

    def _rgb(self, i: int) -> np.ndarray:
        item = self.items[i]
        if isinstance(item, np.ndarray):
            return item
        bgr = cv2.imread(str(item), cv2.IMREAD_COLOR)
        if bgr is None:
            return np.zeros((self.crop, self.crop, 3), np.uint8)  # unreadable: gray, skipped below
        return np.ascontiguousarray(bgr[..., ::-1])

    def _crop(self, rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        h, w = rgb.shape[:2]
        c = self.crop
        if min(h, w) < c or not self.train:  # scale the short side to the crop
            s = c / min(h, w)
            rgb = cv2.resize(rgb, (max(c, round(w * s)), max(c, round(h * s))), interpolation=cv2.INTER_AREA)
            h, w = rgb.shape[:2]
        if self.train:
            y, x = rng.integers(0, h - c + 1), rng.integers(0, w - c + 1)
        else:
            y, x = (h - c) // 2, (w - c) // 2
        out = rgb[y : y + c, x : x + c]
        if self.train and rng.random() < 0.5:
            out = out[:, ::-1]
        return out

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng((self.seed, self.epoch, i))
        for attempt in range(10):
            lab = color.rgb_to_lab(self._crop(self._rgb(i), rng).astype(np.float32) / 255.0)
            if np.hypot(lab[..., 1], lab[..., 2]).mean() >= self.min_chroma or attempt == 9:
                break
            i = int(rng.integers(0, len(self.items)))  # near-gray: take another photo
        l_norm = (lab[..., 0] - 50.0) / 50.0
        ab_norm = lab[..., 1:] / AB_SCALE
        return torch.from_numpy(l_norm[None].copy()), torch.from_numpy(ab_norm.transpose(2, 0, 1).copy())
