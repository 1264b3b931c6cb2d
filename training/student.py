"""The real-time student: a strided U-Net that predicts a distribution over quantized a*b*.

Input  x: (N, 1, H, W) float32, (L* - 50) / 50, H and W multiples of 16.
Output ab: (N, 2, H/4, W/4) float32, CIE a*b*: the annealed mean (Zhang et al. 2016,
"Colorful Image Colorization", sec. 3.1) of the predicted distribution over the
quantized a*b* bins, computed inside the exported graph so the runtime only sees a*b*.

Plain 3x3 convolutions and channel counts that are multiples of 8 (fast in ONNX
Runtime's CPU kernels and in FP16 TensorRT). A global-average-pooled context vector is
added back over the coarsest grid, the cheap version of the fusion layer of
Baldassarre et al. 2017: it lets the whole frame agree on one palette.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def _conv(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride, padding=dilation, dilation=dilation, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class ABClassifier(nn.Module):
    """A network whose `logits(x)` are (N, Q, h, w) over the a*b* bins in `self.bins` and whose
    output is their annealed mean; the head convolution is `self.head`."""

    # The softmax below is computed as exp(z) with z = (logits - channel mean) / T - SHIFT,
    # clipped at CLIP. The largest z is then >= -SHIFT (its exp stays a normal float32 even
    # after the 1/128: no 0/0) and nothing is clipped while a class leads the mean by less
    # than (SHIFT + CLIP) * T (the exported graph is within 0.01 a*b* of the max-shifted
    # softmax on every ../shared/data eval and archival photo; SHIFT 55 was not: 2.4). The
    # 1/128 in the last convolution keeps 222 * e^80 * 110 finite. Classes far below the top
    # give denormal floats, which x86 CPUs process very slowly: the runtime flushes them to
    # zero (streamcolor/engines/onnx_engine.py), a change below e^-12 of the top class's weight.
    SHIFT, CLIP, SUM_SCALE = 75.0, 80.0, 1.0 / 128.0

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def fold_head(self) -> None:
        """For export: fold the softmax's per-pixel shift (the channel mean, a linear map),
        1/T and SHIFT into the head convolution, exactly. ONNX Runtime's channel ReduceMax
        (the usual shift), Sub and Div cost 1.1 of 5.4 ms (profiled on 2 cores); folded,
        they cost nothing (student 6.1 -> 3.9 ms per frame)."""
        with torch.no_grad():
            w, b = self.head.weight, self.head.bias
            w.sub_(w.mean(dim=0, keepdim=True)).div_(self.temperature)
            b.sub_(b.mean()).div_(self.temperature).sub_(self.SHIFT)
        self.head_folded = True

    def annealed_mean(self, logits: torch.Tensor, temperature: float | None = None) -> torch.Tensor:
        """(N, Q, h, w) logits -> (N, 2, h, w) a*b*: E[ab] under softmax(logits / T)."""
        if self.head_folded:
            if temperature is not None:
                raise ValueError("the head is folded for a fixed temperature; annealed_mean cannot change it")
            z = logits
        else:
            t = self.temperature if temperature is None else temperature
            z = (logits - logits.mean(dim=1, keepdim=True)) / t - self.SHIFT
        # Softmax written out: ONNX Runtime's Softmax over the channel axis of NCHW
        # transposes the tensor and cost 12 of 16 ms per frame (profiled, 2 threads).
        # One 1x1 convolution gives both sum(p * ab) and sum(p) (both scaled alike).
        e = torch.exp(z.clamp(max=self.CLIP))
        weights = torch.cat([self.bins.t(), torch.ones_like(self.bins[:, :1]).t()], dim=0) * self.SUM_SCALE
        s = F.conv2d(e, weights[:, :, None, None])
        return s[:, :2] / s[:, 2:]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.annealed_mean(self.logits(x))


class StudentUNet(ABClassifier):
    def __init__(
        self, bins: torch.Tensor, width: int = 16, temperature: float = 0.38, depth: int = 4, dropout: float = 0.0
    ):
        """bins: (Q, 2) float32 a*b* centres of the quantized classes.
        depth 4: coarsest grid H/16; depth 5 adds an H/32 stage (wider context, little cost).
        dropout: channel dropout on the coarsest features while training."""
        super().__init__()
        if depth not in (4, 5):
            raise ValueError(f"depth must be 4 or 5, got {depth}")
        w = width
        self.depth = depth
        self.register_buffer("bins", bins.float().clone())
        self.temperature = float(temperature)
        self.e1 = _conv(1, w, 2)  # H/2
        self.e2 = nn.Sequential(_conv(w, 2 * w, 2), _conv(2 * w, 2 * w))  # H/4
        self.e3 = nn.Sequential(_conv(2 * w, 4 * w, 2), _conv(4 * w, 4 * w))  # H/8
        self.e4 = nn.Sequential(  # H/16, dilated for a wide receptive field
            _conv(4 * w, 8 * w, 2), _conv(8 * w, 8 * w, dilation=2), _conv(8 * w, 8 * w, dilation=2)
        )
        if depth == 5:
            self.e5 = nn.Sequential(_conv(8 * w, 8 * w, 2), _conv(8 * w, 8 * w, dilation=2))
            self.lat4 = nn.Conv2d(8 * w, 8 * w, 1)
            self.d4 = _conv(8 * w, 8 * w)
        self.drop = nn.Dropout2d(dropout)
        self.context = nn.Sequential(nn.Conv2d(8 * w, 8 * w, 1), nn.ReLU(inplace=True))
        self.lat3 = nn.Conv2d(8 * w, 4 * w, 1)
        self.d3 = _conv(4 * w, 4 * w)
        self.lat2 = nn.Conv2d(4 * w, 2 * w, 1)
        self.d2 = nn.Sequential(_conv(2 * w, 2 * w), _conv(2 * w, 2 * w))
        self.head = nn.Conv2d(2 * w, bins.shape[0], 1)
        self.head_folded = False  # fold_head(): softmax's shift and 1/T live in the head's weights

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 1, H, W) -> (N, Q, H/4, W/4) class logits."""
        e2 = self.e2(self.e1(x))
        e3 = self.e3(e2)
        e4 = self.e4(e3)
        if self.depth == 5:
            e5 = self.drop(self.e5(e4))
            e5 = e5 + self.context(F.adaptive_avg_pool2d(e5, 1))
            e4 = self.d4(self._up(self.lat4(e5), e4) + e4)
        else:
            e4 = self.drop(e4)
            e4 = e4 + self.context(F.adaptive_avg_pool2d(e4, 1))
        d3 = self.d3(self._up(self.lat3(e4), e3) + e3)
        d2 = self.d2(self._up(self.lat2(d3), e2) + e2)
        return self.head(d2)

    @staticmethod
    def _up(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """Nearest 2x upsampling; inputs are multiples of 16 (32 for depth 5) so sizes match."""
        return F.interpolate(x, scale_factor=2.0, mode="nearest")


def ab_bins(grid: float = 10.0, limit: float = 110.0) -> torch.Tensor:
    """(Q, 2) centres of the full a*b* grid; training keeps those the data uses."""
    c = torch.arange(-limit, limit + 1e-6, grid)
    a, b = torch.meshgrid(c, c, indexing="ij")
    return torch.stack([a.flatten(), b.flatten()], dim=1)


class MobileStudent(ABClassifier):
    """The real-time student on the ImageNet-pretrained MobileNetV2 (training/mobilenet.py).

    Input  x: (N, 1, H, W) float32, (L* - 50) / 50, H and W multiples of 32.
    Output ab: (N, 2, H/4, W/4) float32 CIE a*b*, the annealed mean over the a*b* bins.

    The gray lightness is turned into the gray sRGB the classifier was trained on (inside the
    graph, a few elementwise operations) and fed to a 1-channel copy of its first convolution
    (the sum of its R, G, B weights: the same features as a gray RGB picture). Encoder: the
    MobileNetV2 blocks up to stride `stages` (16 or 32). With stages 32 the classifier's global
    features (1280 pooled features and 1001 class logits, both pretrained) are mapped by one
    linear layer and added over the coarsest grid: the fusion layer of Iizuka et al. 2016 /
    Baldassarre et al. 2017, which lets the whole frame agree on what it shows. Decoder: a
    U-Net with lateral 1x1 convolutions from the stride 16, 8 and 4 features, 3x3
    conv-BN-ReLU at each scale, nearest upsampling, and the a*b* classification head at
    stride 4 (Zhang et al. 2016).

    hints: also take (N, 3, H, W) user hints (Zhang et al. 2017, "Real-Time User-Guided Image
    Colorization with Learned Deep Priors"): channels a*/110 * mask, b*/110 * mask, mask (0/1).
    hints="gated" (the shipped hint model, _hint_terms): a branch that sees the hints and the
    encoder's features, added to the decoder only when a photo holds a hint; without hints the
    output is the automatic student's, exactly. hints=True: the first design described here.
    They enter the decoder only, at strides 16, 8 and 4 (each cell: the mean hint colour and
    whether it holds a hint), through layers that start at zero, so (1) a network without hints
    is unchanged, (2) the encoder's features do not depend on the hints: one pass gives both the
    hinted a*b* and the features that pinned hints and reference photos are matched with
    (`features_out`), and (3) the pretrained encoder can stay fixed while the hints are learned.
    """

    def __init__(
        self,
        bins: torch.Tensor,
        temperature: float = 0.38,
        stages: int = 32,
        decoder: tuple[int, int, int] = (96, 64, 48),
        weights: str | None = None,
        hints: bool = False,
        channels: dict[int, int] | None = None,
    ):
        """channels: {stride: channels} of another encoder's features (a decoder trained on cached
        EfficientNet-Lite features, training/train_cached.py: a teacher, run on its cache only;
        the MobileNetV2 encoder built here then goes unused). None: MobileNetV2's."""
        from training.mobilenet import STAGE_CHANNELS, MobileNetV2, load_tflite_weights

        super().__init__()
        if stages not in (16, 32):
            raise ValueError(f"stages must be 16 or 32, got {stages}")
        self.register_buffer("bins", bins.float().clone())
        self.temperature = float(temperature)
        self.stages = stages
        self.decoder_widths = tuple(decoder)
        self.encoder = MobileNetV2(stages, head=stages == 32, in_channels=1)
        self.provenance = load_tflite_weights(self.encoder, weights) if weights else None
        d16, d8, d4 = decoder
        c = {**STAGE_CHANNELS, **(channels or {})}
        if stages == 32:
            self.lat32 = nn.Conv2d(c[32], d16, 1)
            self.fuse = nn.Linear(1280 + 1001, d16)
            self.d16 = _conv(d16, d16)
            self.lat16 = nn.Conv2d(c[16], d16, 1)
        else:
            self.lat16 = nn.Conv2d(c[16], d16, 1)
            self.fuse = nn.Linear(c[16], d16)
            self.d16 = _conv(d16, d16)
        self.up8 = nn.Conv2d(d16, d8, 1)
        self.lat8 = nn.Conv2d(c[8], d8, 1)
        self.d8 = _conv(d8, d8)
        self.up4 = nn.Conv2d(d8, d4, 1)
        self.lat4 = nn.Conv2d(c[4], d4, 1)
        self.d4 = nn.Sequential(_conv(d4, d4), _conv(d4, d4))
        self.head = nn.Conv2d(d4, bins.shape[0], 1)
        self.hints = hints if hints in (False, "gated") else bool(hints)
        self.frozen_bn = False  # train(): keep the batch norms of a fixed decoder fixed too
        if hints == "gated":
            c = STAGE_CHANNELS

            def branch(cin: int, width: int, cout: int, dilations: tuple[int, ...]) -> nn.Sequential:
                layers, ch = [], cin
                for dil in dilations:
                    layers += [nn.Conv2d(ch, width, 3, padding=dil, dilation=dil), nn.ReLU(inplace=True)]
                    ch = width
                return nn.Sequential(*layers, nn.Conv2d(width, cout, 1))

            self.hint16 = branch(3 + c[16], 64, d16, (1, 2, 4))
            self.hint8 = branch(3 + c[8], 32, d8, (1, 2))
            self.hint4 = branch(3 + c[4], 32, d4, (1,))
            for b in (self.hint16, self.hint8, self.hint4):
                nn.init.zeros_(b[-1].weight)
                nn.init.zeros_(b[-1].bias)
        elif hints:
            self.hint16 = nn.Sequential(
                nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(32, d16, 3, padding=2, dilation=2)
            )
            self.hint8 = nn.Conv2d(3, d8, 1)
            self.hint4 = nn.Conv2d(3, d4, 1)
            for conv in (self.hint16[2], self.hint8, self.hint4):
                nn.init.zeros_(conv.weight)
                nn.init.zeros_(conv.bias)
        self.head_folded = False
        self.classifier_folded = False

    def fold_classifier(self) -> None:
        """For export (stages 32): the class logits enter only the linear fusion layer, so
        fuse([f, C f + c]) = (W_f + W_c C) f + (W_c c + b) is one 1280 -> d16 linear map, exactly;
        the 1280 x 1001 classifier (5 MB of the file) is then dropped."""
        if self.stages != 32 or self.classifier_folded:
            return
        with torch.no_grad():
            cls = self.encoder.classifier
            c_w, c_b = cls.weight.flatten(1), cls.bias  # (1001, 1280), (1001,)
            w_f, w_c = self.fuse.weight[:, :1280], self.fuse.weight[:, 1280:]
            fused = nn.Linear(1280, self.fuse.out_features)
            fused.weight.copy_(w_f + w_c @ c_w)
            fused.bias.copy_(self.fuse.bias + w_c @ c_b)
        self.fuse = fused
        self.encoder.classifier = None
        self.classifier_folded = True

    def features(self, x: torch.Tensor) -> dict[int, torch.Tensor]:
        """(N, 1, H, W) -> the pretrained encoder's {stride: features}; never depends on hints."""
        from training.mobilenet import l_to_gray_rgb

        return self.encoder.forward_stages(l_to_gray_rgb(x))

    @staticmethod
    def hint_grids(hints: torch.Tensor) -> dict[int, torch.Tensor]:
        """(N, 3, H, W) hints -> {4, 8, 16: (N, 3, H/s, W/s)}: per cell the mean a*b* / 110 of
        the hints in it (0 where none) and the share of the cell they cover, square-rooted so a
        one-pixel hint still counts (1/16 of a stride-4 cell -> 0.25)."""
        out = {}
        g = hints
        for s in (4, 8, 16):
            g = F.avg_pool2d(g, 4 if s == 4 else 2)
            cover = g[:, 2:3]
            out[s] = torch.cat([g[:, :2] / (cover + 1e-4), torch.sqrt(cover)], dim=1)
        return out

    def train(self, mode: bool = True):
        super().train(mode)
        if self.frozen_bn:
            for m in self.modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.eval()
        return self

    def decode(self, e: dict[int, torch.Tensor], hints: torch.Tensor | None = None) -> torch.Tensor:
        """Encoder features (features()) and optional hints -> (N, Q, H/4, W/4) class logits."""
        add = self._hint_terms(e, hints)
        if self.stages == 32 and self.classifier_folded:
            pooled = self.encoder.features_conv(e[32]).mean(dim=(2, 3))
            g = self.fuse(pooled)[:, :, None, None]
            d = F.relu(self.lat32(e[32]) + g)
            d16 = F.interpolate(d, scale_factor=2.0, mode="nearest") + self.lat16(e[16])
        elif self.stages == 32:
            pooled, classes = self.encoder.pooled(e[32])
            g = self.fuse(torch.cat([pooled, classes], dim=1))[:, :, None, None]
            d = F.relu(self.lat32(e[32]) + g)
            d16 = F.interpolate(d, scale_factor=2.0, mode="nearest") + self.lat16(e[16])
        else:
            g = self.fuse(e[16].mean(dim=(2, 3)))[:, :, None, None]
            d16 = self.lat16(e[16]) + g
        if add:
            d16 = d16 + add[16]
        if self.stages == 16:
            d16 = F.relu(d16)
        d = self.d16(d16)
        d8 = F.interpolate(self.up8(d), scale_factor=2.0, mode="nearest") + self.lat8(e[8])
        if add:
            d8 = d8 + add[8]
        d = self.d8(d8)
        d4 = F.interpolate(self.up4(d), scale_factor=2.0, mode="nearest") + self.lat4(e[4])
        if add:
            d4 = d4 + add[4]
        return self.head(self.d4(d4))

    # the gated branch's inputs: hint grids (a*b*/110 about +-0.5) scaled up, the encoder's
    # features (std about 5) scaled down, so neither drowns the other at the start (with both
    # at 1 the branch barely learned: validation CE 3.014 -> 3.011 with hints in 480 steps)
    HINT_GAIN, FEATURE_GAIN = 4.0, 0.2

    def _hint_terms(self, e: dict[int, torch.Tensor], hints: torch.Tensor | None) -> dict[int, torch.Tensor]:
        """What the hints add to the decoder at strides 16, 8 and 4 ({} without hints).

        hints=True: hint16/8/4 of the hint grids. hints="gated" (the shipped hint model): a
        small network sees the hint grid beside the encoder's features at each stride, and its
        output is multiplied by gate = 1 when the photo holds any hint, else 0. So with no hints
        the result is exactly the decoder without hint channels, whatever the branch learned;
        the branch alone is trained, the rest stays the automatic model. Hints of 4 planes: the
        fourth (streamcolor/geodesic.hint_locality, in [0, 1]) multiplies each term, averaged
        to its stride, so one hint changes its object and not the rest (issue 24)."""
        if not self.hints or hints is None:
            return {}
        reach = hints[:, 3:4] if hints.shape[1] == 4 else None  # hint locality (4 planes)
        hints = hints[:, :3]
        h = self.hint_grids(hints)
        if self.hints != "gated":
            return {s: getattr(self, f"hint{s}")(h[s]) for s in (16, 8, 4)}
        if self.stages != 16:
            raise ValueError("gated hints are built for the stages-16 student")
        gate = hints[:, 2:3].amax(dim=(2, 3), keepdim=True)
        terms = {
            s: gate * getattr(self, f"hint{s}")(torch.cat([h[s] * self.HINT_GAIN, e[s] * self.FEATURE_GAIN], dim=1))
            for s in (16, 8, 4)
        }
        if reach is not None:  # each term only where the hints may change the picture
            terms = {s: t * F.avg_pool2d(reach, s) for s, t in terms.items()}
        return terms

    def logits(self, x: torch.Tensor, hints: torch.Tensor | None = None) -> torch.Tensor:
        """(N, 1, H, W) and optional (N, 3, H, W) hints -> (N, Q, H/4, W/4) class logits."""
        return self.decode(self.features(x), hints)

    def forward(self, x: torch.Tensor, hints: torch.Tensor | None = None) -> torch.Tensor:
        return self.annealed_mean(self.logits(x, hints))


def student_from_checkpoint(c: dict, temperature: float = 0.38, weights: str | None = None) -> ABClassifier:
    """Build the student a train_student checkpoint describes (its `arch`) and load its weights."""
    if c.get("arch", "unet") == "mobile":
        m = MobileStudent(
            c["bins"], temperature, stages=c["stages"], decoder=tuple(c["decoder"]), hints=c.get("hints", False)
        )
        m.provenance = c.get("backbone")
    else:
        m = StudentUNet(c["bins"], width=c["width"], temperature=temperature, depth=c.get("depth", 4))
    m.load_state_dict(c["state_dict"])
    return m
