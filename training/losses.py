"""Teacher losses: adversarial (vanilla or LSGAN), L1, and VGG16 perceptual.

The perceptual loss only ever runs on real ImageNet VGG16 weights: from a local file or,
on a machine with internet, torchvision's download. Without them it refuses to start and
says how to proceed; it never computes features of a randomly initialised VGG.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from streamcolor import color
from training.teachers import AB_SCALE


def lab_to_rgb_torch(lab: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) L*a*b* -> (N, 3, H, W) sRGB in [0, 1] (differentiable; color.lab_to_rgb)."""
    fy = (lab[:, 0] + 16.0) / 116.0
    f = torch.stack([fy + lab[:, 1] / 500.0, fy, fy - lab[:, 2] / 200.0], dim=1)
    t3 = f**3
    xyz = torch.where(t3 > color._EPS, t3, (116.0 * f - 16.0) / color._KAPPA)
    xyz = xyz * torch.as_tensor(color.D65_WHITE, device=lab.device, dtype=lab.dtype).view(1, 3, 1, 1)
    m = torch.as_tensor(color.XYZ_TO_RGB, device=lab.device, dtype=lab.dtype)
    lin = torch.einsum("cd,ndhw->nchw", m, xyz).clamp(min=1e-8)
    srgb = torch.where(lin <= 0.0031308, lin * 12.92, 1.055 * lin ** (1 / 2.4) - 0.055)
    return srgb.clamp(0.0, 1.0)


def to_rgb(l_norm: torch.Tensor, ab_norm: torch.Tensor) -> torch.Tensor:
    """Network tensors (L normalised as the card says, a*b* / AB_SCALE) -> sRGB."""
    return lab_to_rgb_torch(torch.cat([l_norm * 50.0 + 50.0, ab_norm * AB_SCALE], dim=1))


class GANLoss(nn.Module):
    """'vanilla' (binary cross-entropy on logits, Goodfellow et al.) or 'lsgan' (Mao et al.)."""

    def __init__(self, mode: str = "vanilla"):
        super().__init__()
        if mode not in ("vanilla", "lsgan"):
            raise SystemExit(f"unknown GAN loss '{mode}'; choose vanilla or lsgan")
        self.mode = mode

    def forward(self, logits: torch.Tensor, real: bool) -> torch.Tensor:
        target = torch.full_like(logits, 1.0 if real else 0.0)
        if self.mode == "lsgan":
            return F.mse_loss(logits, target)
        return F.binary_cross_entropy_with_logits(logits, target)


class VGGPerceptual(nn.Module):
    """L1 between VGG16 features (relu1_2, relu2_2, relu3_3) of two sRGB images.

    weights: 'hub' (torchvision's ImageNet weights, downloaded once) or a path to a
    torchvision vgg16 state dict (e.g. vgg16-397923af.pth)."""

    LAYERS = (3, 8, 15)  # indices of relu1_2, relu2_2, relu3_3 in vgg16().features

    def __init__(self, weights: str | Path, log: Callable[[str], None] = print):
        super().__init__()
        try:
            from torchvision.models import VGG16_Weights, vgg16
        except ImportError:
            raise SystemExit(
                "the perceptual loss needs torchvision's VGG16: pip install torchvision, or set loss.perceptual = 0"
            ) from None
        if str(weights) == "hub":
            try:
                net = vgg16(weights=VGG16_Weights.IMAGENET1K_V1)
            except Exception as e:  # no internet, proxy, disk: say what to do instead
                raise SystemExit(
                    f"cannot download VGG16 weights ({type(e).__name__}); pass loss.vgg_weights = PATH to "
                    "vgg16-397923af.pth, or set loss.perceptual = 0 to train without the perceptual loss"
                ) from None
            log("perceptual loss: VGG16 ImageNet weights from torchvision")
        else:
            path = Path(weights)
            if not path.is_file():
                raise SystemExit(f"VGG16 weights not found: {path} (or set loss.perceptual = 0)")
            net = vgg16()
            net.load_state_dict(torch.load(path, map_location="cpu"))
            log(f"perceptual loss: VGG16 ImageNet weights from {path}")
        self.features = net.features[: self.LAYERS[-1] + 1].eval()
        for p in self.features.parameters():
            p.requires_grad_(False)
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def _feats(self, rgb: torch.Tensor) -> list[torch.Tensor]:
        x, out = (rgb - self.mean) / self.std, []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self.LAYERS:
                out.append(x)
        return out

    def forward(self, rgb: torch.Tensor, target_rgb: torch.Tensor) -> torch.Tensor:
        return sum(F.l1_loss(a, b) for a, b in zip(self._feats(rgb), self._feats(target_rgb)))


class MobileNetPerceptual(nn.Module):
    """L1 between the ImageNet MobileNetV2's features (block outputs at strides 2, 4 and 8) of two
    sRGB images in [0, 1]. No VGG weights can be reached on our machines: this pretrained
    classifier stands for the "networks like VGG" of the seed's perceptual loss (Johnson et al.
    2016 use VGG16's relu1_2..relu3_3, the same depths: strides 1 to 4 of VGG, 2 to 8 here).

    weights: the MobileNetV2 TFLite file (training/mobilenet.py reads it)."""

    def __init__(self, weights: str | Path, log: Callable[[str], None] = print):
        super().__init__()
        from training.mobilenet import MobileNetV2, load_tflite_weights

        path = Path(weights)
        if not path.is_file():
            raise SystemExit(f"MobileNetV2 weights not found: {path} (or set loss.perceptual = 0)")
        self.net = MobileNetV2(8, head=False)
        self.provenance = load_tflite_weights(self.net, path)
        self.net.eval()
        for p in self.net.parameters():
            p.requires_grad_(False)
        log(f"perceptual loss: ImageNet MobileNetV2 features from {path}")

    def forward(self, rgb: torch.Tensor, target_rgb: torch.Tensor) -> torch.Tensor:
        a, b = self.net.forward_stages(rgb * 2 - 1), self.net.forward_stages(target_rgb * 2 - 1)
        return sum(F.l1_loss(a[s], b[s]) for s in (2, 4, 8))
