"""Image lists, the fixed validation split and Lab conversion on tensors for training.

The Lab maths is streamcolor.color's (same constants), written for torch so that it
runs on the GPU next to the network.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

from streamcolor import color

if TYPE_CHECKING:
    import torch

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


def list_images(folder: Path) -> list[Path]:
    return sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)


def is_validation(name: str, fraction: float = 0.03) -> bool:
    """A fixed split by a hash of the file name: stable across machines and runs."""
    h = int(hashlib.sha1(name.encode()).hexdigest()[:8], 16)
    return h < fraction * 0xFFFFFFFF


def rgb_to_lab_torch(rgb: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) sRGB in [0, 1] -> (N, 3, H, W) L*a*b*."""
    import torch  # training-only dependency; evaluation runs without it

    lin = torch.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    m = torch.as_tensor(color.RGB_TO_XYZ / color.D65_WHITE[:, None], device=rgb.device, dtype=rgb.dtype)
    xyz = torch.einsum("cd,ndhw->nchw", m, lin)
    eps, kappa = 216.0 / 24389.0, 24389.0 / 27.0
    f = torch.where(xyz > eps, xyz.clamp_min(1e-12) ** (1 / 3), (kappa * xyz + 16.0) / 116.0)
    return torch.stack([116.0 * f[:, 1] - 16.0, 500.0 * (f[:, 0] - f[:, 1]), 200.0 * (f[:, 1] - f[:, 2])], dim=1)
