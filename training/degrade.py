"""Degradations of archival film and old photos, applied to the lightness a colorizer sees.

Our users' input is not a clean photo: it is film with grain, blur, faded contrast, exposure
and gamma that drift, scratches and dust, and digitised copies with JPEG/MPEG blocking
(the failure cases listed by Wan et al. 2020, "Bringing Old Photos Back to Life", and
Iizuka & Simo-Serra 2019, "DeepRemaster"). Training applies a random mix of them to L*
only; the target a*b* stays the clean photo's, so the network learns to see through them.

    python -m training.degrade --data ../shared/data/eval --out runs/eval_degraded

writes the fixed degraded copy of a folder of photos used to measure this: the degraded
L* joined to the photo's own a*b* (so gray and colorized outputs share its lightness and
the scores compare colour only), deterministic per file name.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.nn import functional as F


def _gauss_kernel(sigma: torch.Tensor, size: int = 7) -> torch.Tensor:
    """(N,) sigmas -> (N, 1, size, size) normalised Gaussian kernels."""
    r = torch.arange(size, dtype=torch.float32, device=sigma.device) - size // 2
    g = torch.exp(-(r[None] ** 2) / (2 * sigma[:, None].clamp_min(1e-3) ** 2))
    g = g / g.sum(dim=1, keepdim=True)
    return g[:, None, :, None] * g[:, None, None, :]


def _blur(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    n = x.shape[0]
    k = _gauss_kernel(sigma)
    y = F.conv2d(F.pad(x.transpose(0, 1), (3, 3, 3, 3), mode="reflect"), k, groups=n)
    return y.transpose(0, 1)


def _jpeg(lum: torch.Tensor, quality: np.ndarray) -> torch.Tensor:
    """Real JPEG round trip of each L* plane (OpenCV), quality per image."""
    out = lum.clone()
    for i, q in enumerate(quality):
        if q <= 0:
            continue
        plane = (lum[i, 0].clamp(0, 100) * 2.55).round().byte().cpu().numpy()
        ok, buf = cv2.imencode(".jpg", plane, [cv2.IMWRITE_JPEG_QUALITY, int(q)])
        if ok:
            dec = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE).astype(np.float32) / 2.55
            out[i, 0] = torch.from_numpy(dec).to(lum.device)
    return out


def degrade_l(lum: torch.Tensor, gen: torch.Generator, p: float = 0.7, strength: float = 1.0) -> torch.Tensor:
    """(N, 1, H, W) L* in [0, 100] -> the same, each image degraded with probability p by a
    random mix of: low contrast and exposure/gamma drift, blur, film grain (fine and clumped),
    scratches (thin vertical lines), dust (small bright/dark spots) and JPEG blocking.
    `strength` scales every effect (1: as strong as the archival clips in ../shared/data)."""
    n, _, h, w = lum.shape
    dev = lum.device
    r = torch.rand(n, 12, generator=gen).to(dev)
    on = (r[:, 0] < p).float()[:, None, None, None]
    y = lum / 100.0
    # tone: contrast 0.55-1.0 about the mean, exposure +-0.12, gamma 0.7-1.4
    mean = y.mean(dim=(2, 3), keepdim=True)
    contrast = 1.0 - strength * 0.45 * r[:, 1, None, None, None] * (r[:, 2, None, None, None] < 0.6)
    y = mean + (y - mean) * contrast + strength * 0.12 * (r[:, 3, None, None, None] - 0.5) * 2
    gamma = torch.exp(strength * 0.35 * (r[:, 4] * 2 - 1))[:, None, None, None]
    y = y.clamp(0, 1) ** gamma
    # blur: sigma 0-1.6 px for 60 % of images
    sigma = strength * 1.6 * r[:, 5] * (r[:, 6] < 0.6)
    y = torch.where(sigma[:, None, None, None] > 0.2, _blur(y, sigma), y)
    # grain: white noise and a blurred (clumped) component, sd up to 0.06
    sd = strength * 0.06 * r[:, 7, None, None, None]
    noise = torch.randn(n, 1, h, w, generator=gen).to(dev)
    clump = _blur(torch.randn(n, 1, h, w, generator=gen).to(dev), torch.full((n,), 1.2, device=dev)) * 2.0
    y = y + sd * (0.5 * noise + 0.5 * clump)
    # scratches: a few 1-px vertical lines, bright or dark, for 30 % of images
    scratch = torch.zeros(n, 1, 1, w, device=dev)
    k = 3
    cols = (torch.rand(n, k, generator=gen) * w).long().to(dev)
    vals = ((torch.rand(n, k, generator=gen) - 0.5) * 0.8).to(dev) * (r[:, 8:9] < 0.3)
    scratch.scatter_add_(3, cols[:, None, None, :], vals[:, None, None, :])
    y = y + strength * scratch
    # dust: sparse spots of 1-3 px for 30 % of images
    spots = (torch.rand(n, 1, h, w, generator=gen).to(dev) < 0.0015).float() * (r[:, 9, None, None, None] < 0.3)
    spots = F.max_pool2d(spots, 3, 1, 1) * torch.sign(torch.rand(n, 1, 1, 1, generator=gen).to(dev) - 0.5)
    y = y + strength * 0.5 * spots
    out = (y.clamp(0, 1) * 100.0).float()
    # JPEG at quality 10-60 for 40 % of images (real codec: blocking and ringing)
    q = np.where(r[:, 10].cpu().numpy() < 0.4, 10 + 50 * r[:, 11].cpu().numpy(), 0)
    out = _jpeg(out, q * on[:, 0, 0, 0].cpu().numpy())
    return on * out + (1 - on) * lum


def degrade_folder(data: Path, out: Path, strength: float = 1.0) -> int:
    """Write the degraded copy of every photo under `data` to `out` (PNG, same relative path):
    degraded L* with the photo's own a*b*. Deterministic per relative file name."""
    from streamcolor import color
    from training.data import list_images

    count = 0
    for path in list_images(data):
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            continue
        rgb = bgr[..., ::-1].astype(np.float32) / 255.0
        lab = color.rgb_to_lab(rgb)
        rel = path.relative_to(data)
        seed = int(hashlib.sha1(str(rel).encode()).hexdigest()[:8], 16)
        gen = torch.Generator().manual_seed(seed)
        lum = torch.from_numpy(np.ascontiguousarray(lab[..., 0]))[None, None]
        lab[..., 0] = degrade_l(lum, gen, p=1.0, strength=strength)[0, 0].numpy()
        rgb_out = np.clip(color.lab_to_rgb(lab), 0, 1)
        dst = (out / rel).with_suffix(".png")
        dst.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(dst), (rgb_out[..., ::-1] * 255 + 0.5).astype(np.uint8))
        count += 1
    return count


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="write the degraded copy of a folder of photos")
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--strength", type=float, default=1.0)
    a = ap.parse_args(argv)
    print(f"wrote {degrade_folder(a.data, a.out, a.strength)} photos to {a.out}")


if __name__ == "__main__":
    main()
