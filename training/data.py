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


# Source folders of ../shared/data/train held out whole: sources no model has seen, like the
# photos users bring (the issue-13 lesson: a validation split drawn from the eval set's own
# sources chose a model that was +0.7 dB there and -0.2 dB on unseen photos).
VALIDATION_FOLDERS = ("coco128", "debian_wallpaper_photos")
# Folders that share a source with ../shared/data/eval (BSDS500; the SR benchmark sets beside
# Set5/Set14): trained on, never validated on.
EVAL_KIN_FOLDERS = ("bsds500", "selfexsr_sr_benchmarks")


def is_validation(name: str, fraction: float = 0.03) -> bool:
    """The fixed validation split, stable across machines and runs: every photo of the
    VALIDATION_FOLDERS, plus `fraction` of the other folders by a hash of the file name, except
    the EVAL_KIN_FOLDERS, so that validation shares no source with the eval set. `name` is
    relative to the training folder (`folder/file.jpg`)."""
    folder = name.replace("\\", "/").split("/")[0]
    if folder in VALIDATION_FOLDERS:
        return True
    if folder in EVAL_KIN_FOLDERS:
        return False
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


def random_crops(imgs: torch.Tensor, n: int, out: int, gen: torch.Generator) -> torch.Tensor:
    """uint8 (N, S, S, 3) -> float (n, 3, out, out) sRGB: random scale 0.6-1.0 of the side,
    random position, random horizontal flip, bilinear resampling. Float (N, 3, S, S) images
    (a precomputed L*a*b* pack, see lab_pack) are cropped as they are."""
    import torch
    from torch.nn import functional as F

    dev = imgs.device
    idx = torch.randint(0, imgs.shape[0], (n,), generator=gen, device="cpu").to(dev)
    if imgs.dtype == torch.uint8:
        x = imgs[idx].permute(0, 3, 1, 2).float() / 255.0
    else:
        x = imgs[idx].float()
    r = torch.rand(n, 4, generator=gen).to(dev)
    scale = 0.6 + 0.4 * r[:, 0]
    tx = (1 - scale) * (2 * r[:, 1] - 1)
    ty = (1 - scale) * (2 * r[:, 2] - 1)
    flip = torch.where(r[:, 3] < 0.5, -1.0, 1.0)
    theta = torch.zeros(n, 2, 3, device=dev)
    theta[:, 0, 0] = scale * flip
    theta[:, 0, 2] = tx
    theta[:, 1, 1] = scale
    theta[:, 1, 2] = ty
    grid = F.affine_grid(theta, (n, 3, out, out), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def lab_crops(imgs: torch.Tensor, n: int, out: int, gen: torch.Generator) -> torch.Tensor:
    """n random crops (random_crops) of uint8 (N, S, S, 3) photos as (n, 3, out, out) L*a*b*,
    made on the photos' device; from a lab_pack, the crops of the precomputed L*a*b*."""
    import torch

    if imgs.dtype != torch.uint8:
        return random_crops(imgs, n, out, gen)
    return rgb_to_lab_torch(random_crops(imgs, n, out, gen).clamp(0, 1))


def lab_pack(imgs: torch.Tensor, chunk: int = 256) -> torch.Tensor:
    """uint8 (N, S, S, 3) sRGB -> float16 (N, 3, S, S) L*a*b*, converted once: on a CPU the
    per-batch conversion cost as much as the network's step (0.16 s of a 32-image batch,
    measured on 2 cores). Bilinear crops of L*a*b* instead of sRGB differ only at edges."""
    import torch

    out = torch.empty(imgs.shape[0], 3, imgs.shape[1], imgs.shape[2], dtype=torch.float16, device=imgs.device)
    for i in range(0, imgs.shape[0], chunk):
        rgb = imgs[i : i + chunk].permute(0, 3, 1, 2).float() / 255.0
        out[i : i + chunk] = rgb_to_lab_torch(rgb).half()
    return out
