"""The full-size teachers: a Pix2Pix GAN and a fusion network, created by name.

All generators take L and return a*b*, the same contract as the student:
    input  (N, 1, H, W) float32, (L* - 50) / 50            (the card's l_offset/l_scale)
    output (N, 2, H, W) float32, a*b* / AB_SCALE in [-1, 1] (tanh; AB_SCALE = 110)

- pix2pix_unet: Isola et al. 2017's U-Net generator: 8 stride-2 4x4 convolutions
  (64-128-256-512-512-512-512-512 filters), batch norm, LeakyReLU 0.2 down, ReLU up,
  dropout 0.5 on the three innermost up-convolutions, skip connections at every scale.
  H and W must be multiples of 256 (8 halvings); any multiple of 2^depth with `depth`.
- pix2pix_resnet: the same decoder on a timm ResNet encoder (`features_only`), ImageNet
  weights when asked for (the Shariatnia tutorial / DeOldify family).
- patchgan: the 70x70 PatchGAN discriminator on (L, a*b*) pairs: C64-C128-C256-C512, a
  1-channel map of real/fake logits.
- pix2pix_mobilenet: a U-Net generator whose encoder is the ImageNet-pretrained MobileNetV2
  (training/mobilenet.py, read from ../shared/weights) and whose decoder climbs back through
  its stride 16, 8, 4 and 2 features to full resolution, with dropout 0.5 on the two innermost
  up-steps as in pix2pix. Trained like the seed's first reference (pretrain the generator
  with L1, then add the 70x70 PatchGAN: loss.l1_pretrain).
- fusion: Baldassarre et al. 2017 ("Deep Koalarization"): conv encoder on L (H/8), a
  global feature vector from Inception-ResNet-v2 (timm) on the gray image at 299x299,
  tiled over the encoder grid and fused by a 1x1 convolution, conv decoder back to H.
  backbone "mobilenet_v2" takes the pretrained MobileNetV2 classifier's global features
  instead (its 1280 pooled features and 1001 class logits, on the gray image at 224x224;
  `pretrained` is then the TFLite file); "tiny" a small CNN (tests, CPU runs).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F

AB_SCALE = 110.0


def _timm():
    try:
        import timm
    except ImportError:
        raise SystemExit(
            "this teacher needs timm (and torchvision): pip install timm torchvision "
            "(on this project's CPU machines: pip install torch==2.14.1 torchvision==0.29.1 timm)"
        ) from None
    return timm


def _pretrained_note(pretrained: bool | str, what: str) -> str:
    if pretrained is True:
        return f"{what}: ImageNet weights from the timm hub"
    if isinstance(pretrained, str) and pretrained:
        return f"{what}: ImageNet weights from {pretrained}"
    return f"{what}: RANDOM initialisation (no pretrained weights asked for)"


def _create(timm, name: str, pretrained: bool | str, **kw) -> nn.Module:
    """timm.create_model, with the hub download's failure said in one line."""
    try:
        return timm.create_model(name, pretrained=pretrained is True, **kw)
    except Exception as e:  # offline, proxy, hub errors: all mean "no weights from the hub"
        if pretrained is not True:
            raise
        raise SystemExit(
            f"cannot fetch ImageNet weights for {name} from the timm hub ({type(e).__name__}); set "
            "model.pretrained to a local weights file, or to false to start from random weights"
        ) from None


def _load_local(model: nn.Module, path: str) -> None:
    if str(path).endswith(".safetensors"):
        from safetensors.torch import load_file

        state = load_file(path)
    else:
        state = torch.load(path, map_location="cpu")
    state = state.get("state_dict", state) if isinstance(state, dict) else state
    missing, unexpected = model.load_state_dict(state, strict=False)
    if len(missing) > len(state) // 2:
        raise SystemExit(f"{path} does not hold weights for this backbone ({len(missing)} tensors missing)")


# --- Pix2Pix ---------------------------------------------------------------------------------


class _Down(nn.Module):
    def __init__(self, cin: int, cout: int, norm: bool = True):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(cin, cout, 4, 2, 1, bias=not norm)]
        if norm:
            layers.append(nn.BatchNorm2d(cout))
        layers.append(nn.LeakyReLU(0.2, inplace=True))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class _Up(nn.Module):
    def __init__(self, cin: int, cout: int, dropout: bool):
        super().__init__()
        layers: list[nn.Module] = [nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout)]
        if dropout:
            layers.append(nn.Dropout(0.5))
        layers.append(nn.ReLU(inplace=True))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class UNetGenerator(nn.Module):
    """Pix2Pix U-Net: `depth` stride-2 downsamplings (8 in the paper), ngf base filters."""

    def __init__(self, ngf: int = 64, depth: int = 8, log: Callable = print):
        super().__init__()
        chans = [min(ngf * 2**i, ngf * 8) for i in range(depth)]
        self.downs = nn.ModuleList(
            [_Down(1 if i == 0 else chans[i - 1], c, norm=0 < i < depth - 1) for i, c in enumerate(chans)]
        )
        ups = []
        for i in reversed(range(depth - 1)):  # from the innermost
            cin = chans[i + 1] * (1 if i == depth - 2 else 2)
            ups.append(_Up(cin, chans[i], dropout=i >= depth - 4))
        self.ups = nn.ModuleList(ups)
        self.out = nn.ConvTranspose2d(chans[0] * 2, 2, 4, 2, 1)
        self.multiple = 2**depth
        n = sum(p.numel() for p in self.parameters())
        log(f"pix2pix_unet: {depth} downsamplings, {ngf} base filters, {n} parameters")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for d in self.downs:
            x = d(x)
            skips.append(x)
        x = skips.pop()
        for u in self.ups:
            x = torch.cat([u(x), skips.pop()], dim=1)
        return torch.tanh(self.out(x))


class ResNetUNet(nn.Module):
    """A U-Net decoder on a timm encoder's feature pyramid (resnet18, resnet34, resnet50...)."""

    def __init__(self, backbone: str = "resnet18", pretrained: bool | str = False, log: Callable = print):
        super().__init__()
        timm = _timm()
        self.encoder = _create(timm, backbone, pretrained, features_only=True, in_chans=3, out_indices=(0, 1, 2, 3, 4))
        if isinstance(pretrained, str) and pretrained:
            _load_local(self.encoder, pretrained)
        log(_pretrained_note(pretrained, f"pix2pix_resnet encoder {backbone}"))
        chans = self.encoder.feature_info.channels()
        dec = []
        cin = chans[-1]
        for skip in reversed(chans[:-1]):
            out = max(skip, 64)
            dec.append(nn.Sequential(nn.Conv2d(cin + skip, out, 3, padding=1), nn.BatchNorm2d(out), nn.ReLU(True)))
            cin = out
        self.decoder = nn.ModuleList(dec)
        self.head = nn.Conv2d(cin, 2, 3, padding=1)
        self.multiple = 32
        # ImageNet statistics, applied to the gray image repeated on 3 channels
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gray = ((x * 50 + 50) / 100).repeat(1, 3, 1, 1)  # L* / 100 as a gray image
        feats = self.encoder((gray - self.mean) / self.std)
        y = feats[-1]
        for block, skip in zip(self.decoder, reversed(feats[:-1])):
            y = block(torch.cat([F.interpolate(y, size=skip.shape[-2:], mode="nearest"), skip], dim=1))
        y = F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return torch.tanh(self.head(y))


class MobileUNet(nn.Module):
    """U-Net generator on the pretrained MobileNetV2 encoder (see the module docstring).

    weights: the MobileNetV2 TFLite file (../shared/weights/tf2_mobilenet_v2_1.0_224_ptq.tflite);
    empty: random initialisation (tests; loading a trained checkpoint)."""

    def __init__(self, weights: str = "", width: int = 64, log: Callable = print):
        from training.mobilenet import STAGE_CHANNELS, MobileNetV2, load_tflite_weights

        super().__init__()
        self.encoder = MobileNetV2(32, head=False, in_channels=1)
        self.provenance = load_tflite_weights(self.encoder, weights) if weights else None
        log(
            f"pix2pix_mobilenet encoder: ImageNet MobileNetV2 from {weights}"
            if weights
            else "pix2pix_mobilenet encoder: RANDOM initialisation (no weights file given)"
        )
        c, w = STAGE_CHANNELS, width
        widths = {32: 4 * w, 16: 4 * w, 8: 2 * w, 4: 2 * w, 2: w}
        self.ups = nn.ModuleDict()
        cin = c[32]
        for stride in (16, 8, 4, 2):
            self.ups[str(stride)] = nn.Sequential(
                nn.Conv2d(cin + c[stride], widths[stride], 3, padding=1, bias=False),
                nn.BatchNorm2d(widths[stride]),
                nn.ReLU(True),
                nn.Dropout(0.5) if stride >= 8 else nn.Identity(),
                nn.Conv2d(widths[stride], widths[stride], 3, padding=1, bias=False),
                nn.BatchNorm2d(widths[stride]),
                nn.ReLU(True),
            )
            cin = widths[stride]
        self.full = nn.Sequential(nn.Conv2d(cin + 1, w // 2, 3, padding=1), nn.ReLU(True))
        self.out = nn.Conv2d(w // 2, 2, 3, padding=1)
        self.multiple = 32

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from training.mobilenet import l_to_gray_rgb

        feats = self.encoder.forward_stages(l_to_gray_rgb(x))
        y = feats[32]
        for stride in (16, 8, 4, 2):
            skip = feats[stride]
            y = self.ups[str(stride)](torch.cat([F.interpolate(y, size=skip.shape[-2:], mode="nearest"), skip], 1))
        y = F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return torch.tanh(self.out(self.full(torch.cat([y, x], dim=1))))


class PatchDiscriminator(nn.Module):
    """70x70 PatchGAN (Isola et al. 2017) on (L, a*b*): (N, 3, H, W) -> (N, 1, H/8 - 2, W/8 - 2) logits."""

    def __init__(self, ndf: int = 64):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, ndf, 4, 2, 1),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ndf * 2),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ndf * 4),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf * 4, ndf * 8, 4, 1, 1, bias=False),
            nn.BatchNorm2d(ndf * 8),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf * 8, 1, 4, 1, 1),
        )

    def forward(self, l_norm: torch.Tensor, ab_norm: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([l_norm, ab_norm], dim=1))


# --- fusion network ----------------------------------------------------------------------------


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), nn.BatchNorm2d(cout), nn.ReLU(True))


class TinyBackbone(nn.Module):
    """A small CNN standing in for Inception-ResNet-v2 (tests, CPU runs): gray (N, 3, 299, 299)
    -> (N, features) global vector."""

    def __init__(self, features: int = 64):
        super().__init__()
        self.net = nn.Sequential(_conv(3, 16, 2), _conv(16, 32, 2), _conv(32, features, 2), nn.AdaptiveAvgPool2d(1))
        self.num_features = features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).flatten(1)


class MobileGlobal(nn.Module):
    """The pretrained MobileNetV2 classifier as the fusion network's global feature extractor:
    normalised L (N, 1, H, W) -> (N, 2281) = 1280 pooled features + 1001 class logits, computed
    on the gray sRGB image at 224x224 (the classifier's own size and input scale)."""

    takes_l = True

    def __init__(self, weights: str | bool = "", log: Callable = print):
        from training.mobilenet import MobileNetV2, load_tflite_weights

        super().__init__()
        self.net = MobileNetV2(32, head=True, in_channels=1)
        self.provenance = load_tflite_weights(self.net, weights) if isinstance(weights, str) and weights else None
        log(
            f"fusion backbone mobilenet_v2: ImageNet weights from {weights}"
            if self.provenance
            else "fusion backbone mobilenet_v2: RANDOM initialisation (no weights file given)"
        )
        self.num_features = 1280 + 1001

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from training.mobilenet import l_to_gray_rgb

        g = F.interpolate(l_to_gray_rgb(x), size=(224, 224), mode="bilinear", align_corners=False)
        pooled, logits = self.net.pooled(self.net.forward_stages(g)[32])
        return torch.cat([pooled, logits], dim=1)


class FusionNet(nn.Module):
    """Deep Koalarization. backbone: 'inception_resnet_v2' (timm; pretrained True for the hub,
    a path for a local file), 'mobilenet_v2' (pretrained: the TFLite file) or 'tiny'."""

    def __init__(self, backbone: str = "inception_resnet_v2", pretrained: bool | str = False, log: Callable = print):
        super().__init__()
        if backbone == "mobilenet_v2":
            self.backbone = MobileGlobal(pretrained, log)
            self.mean, self.std = 0.0, 1.0
        elif backbone == "tiny":
            self.backbone = TinyBackbone()
            log("fusion backbone: tiny CNN (a stand-in, not Inception-ResNet-v2)")
            self.mean, self.std = 0.5, 0.5
        else:
            timm = _timm()
            self.backbone = _create(timm, backbone, pretrained, num_classes=0)
            if isinstance(pretrained, str) and pretrained:
                _load_local(self.backbone, pretrained)
            log(_pretrained_note(pretrained, f"fusion backbone {backbone}"))
            self.mean, self.std = 0.5, 0.5  # Inception's preprocessing: [-1, 1]
        feat = self.backbone.num_features
        self.encoder = nn.Sequential(
            _conv(1, 64, 2), _conv(64, 128), _conv(128, 128, 2), _conv(128, 256),
            _conv(256, 256, 2), _conv(256, 512), _conv(512, 512), _conv(512, 256),
        )  # fmt: skip
        self.fuse = nn.Sequential(nn.Conv2d(256 + feat, 256, 1), nn.ReLU(True))
        self.decoder = nn.Sequential(
            _conv(256, 128), nn.Upsample(scale_factor=2), _conv(128, 64), _conv(64, 64),
            nn.Upsample(scale_factor=2), _conv(64, 32), nn.Conv2d(32, 2, 3, padding=1), nn.Tanh(),
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
        )  # fmt: skip
        self.multiple = 8

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        if getattr(self.backbone, "takes_l", False):
            return self.backbone(x)
        gray = ((x * 50 + 50) / 100).repeat(1, 3, 1, 1)
        gray = F.interpolate(gray, size=(299, 299), mode="bilinear", align_corners=False)
        return self.backbone((gray - self.mean) / self.std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        enc = self.encoder(x)
        v = self.embed(x)[:, :, None, None].expand(-1, -1, *enc.shape[-2:])
        return self.decoder(self.fuse(torch.cat([enc, v], dim=1)))


# name -> factory(**options) -> generator
GENERATORS: dict[str, Callable[..., nn.Module]] = {
    "pix2pix_unet": UNetGenerator,
    "pix2pix_resnet": ResNetUNet,
    "pix2pix_mobilenet": MobileUNet,
    "fusion": FusionNet,
}


def create_generator(name: str, **options) -> nn.Module:
    if name not in GENERATORS:
        raise SystemExit(f"unknown teacher '{name}'; choose one of: {', '.join(GENERATORS)}")
    return GENERATORS[name](**options)


def load_teacher(path, device: torch.device | str = "cpu", log: Callable = print) -> nn.Module:
    """A trained teacher generator from a train_teacher checkpoint, in eval mode."""
    ck = torch.load(path, map_location="cpu", weights_only=False)
    if ck.get("kind") != "teacher":
        raise SystemExit(f"{path} is not a teacher checkpoint (training/train_teacher.py writes those)")
    options = dict(ck.get("model_options", {}))
    if "pretrained" in options:
        options["pretrained"] = False  # the checkpoint holds the trained weights
    if "weights" in options:
        options["weights"] = ""
    gen = create_generator(ck["teacher"], **options, log=log)
    gen.load_state_dict(ck["generator"])
    return gen.to(device).eval()


def teacher_ab(teacher: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Teacher a*b* (CIE units) for (N, 1, H, W) normalised L of any size: resized up to the
    teacher's size multiple and back."""
    m = getattr(teacher, "multiple", 1)
    h, w = x.shape[-2:]
    size = (-(-h // m) * m, -(-w // m) * m)
    xin = x if size == (h, w) else F.interpolate(x, size=size, mode="bilinear", align_corners=False)
    out = teacher(xin) * AB_SCALE
    return out if size == (h, w) else F.interpolate(out, size=(h, w), mode="bilinear", align_corners=False)
