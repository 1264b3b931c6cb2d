"""Kernel Inception Distance (Binkowski et al. 2018, "Demystifying MMD GANs") on the pretrained
MobileNetV2's pooled features: how far colorized photos are, as a set, from real colour photos.

KID is the unbiased squared MMD between two sets of features under the cubic polynomial kernel
k(x, y) = (x . y / d + 1)^3, averaged over random subsets (as torch-fidelity and clean-fid
compute it). Unlike FID it is unbiased for small sets (the eval sets hold 115 and 500 photos)
and it is 0 in expectation for two samples of one distribution. Features: the 1280 pooled
features of the ImageNet MobileNetV2 (training/mobilenet.py, ../shared/weights, Apache-2.0) on a
224 x 224 centre crop, in place of InceptionV3, whose weights cannot be downloaded here; values
are therefore comparable between our models, not with published KIDs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

WEIGHTS = Path(__file__).resolve().parents[1].parent / "shared" / "weights" / "tf2_mobilenet_v2_1.0_224_ptq.tflite"


def centre_224(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (224, 224, 3) uint8: short side to 224 (area), centre crop."""
    from training.pack import centre_crop  # channel order does not matter to it

    return centre_crop(rgb, 224)


class Features:
    """(N, H, W, 3) uint8 RGB photos -> (N, 1280) float64 pooled MobileNetV2 features."""

    def __init__(self, weights: Path = WEIGHTS):
        from training.mobilenet import pretrained_mobilenet_v2

        self.net = pretrained_mobilenet_v2(weights)

    def __call__(self, photos: list[np.ndarray], batch: int = 32) -> np.ndarray:
        import torch

        out = []
        with torch.no_grad():
            for i in range(0, len(photos), batch):
                x = np.stack([centre_224(p) for p in photos[i : i + batch]]).astype(np.float32) / 127.5 - 1.0
                x = torch.from_numpy(x).permute(0, 3, 1, 2)
                pooled, _ = self.net.pooled(self.net.forward_stages(x)[32])
                out.append(pooled.double().numpy())
        return np.concatenate(out)


def mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 of two (n, d) and (m, d) feature sets under (x . y / d + 1)^3."""
    d = x.shape[1]
    kxx, kyy, kxy = (x @ x.T / d + 1) ** 3, (y @ y.T / d + 1) ** 3, (x @ y.T / d + 1) ** 3
    n, m = len(x), len(y)
    return float(
        (kxx.sum() - np.trace(kxx)) / (n * (n - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2 * kxy.mean()
    )


def kid_from_features(real: np.ndarray, fake: np.ndarray, subsets: int = 50, size: int = 1000, seed: int = 0) -> float:
    """Mean unbiased MMD^2 over `subsets` random subsets of min(size, n) photos of each set."""
    rng = np.random.default_rng(seed)
    k = min(size, len(real), len(fake))
    if k < 2:
        raise ValueError("KID needs at least 2 photos in each set")
    vals = [
        mmd2_unbiased(real[rng.choice(len(real), k, replace=False)], fake[rng.choice(len(fake), k, replace=False)])
        for _ in range(subsets)
    ]
    return float(np.mean(vals))


def kid(real: list[np.ndarray], others: list[list[np.ndarray]]) -> list[float]:
    """KID of each set of photos in `others` to the `real` photos (lists of uint8 RGB arrays)."""
    feats = Features()
    f_real = feats(real)
    return [kid_from_features(f_real, feats(o)) for o in others]
