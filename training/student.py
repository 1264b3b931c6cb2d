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


class StudentUNet(nn.Module):
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

    # The softmax below is computed as exp(z) with z = (logits - channel mean) / T - SHIFT,
    # clipped at CLIP. The largest z is then >= -SHIFT (its exp stays a normal float32 even
    # after the 1/128: no 0/0) and nothing is clipped while a class leads the mean by less
    # than (SHIFT + CLIP) * T (the exported graph is within 0.01 a*b* of the max-shifted
    # softmax on every ../shared/data eval and archival photo; SHIFT 55 was not: 2.4). The
    # 1/128 in the last convolution keeps 222 * e^80 * 110 finite. Classes far below the top
    # give denormal floats, which x86 CPUs process very slowly: the runtime flushes them to
    # zero (streamcolor/engines/onnx_engine.py), a change below e^-12 of the top class's weight.
    SHIFT, CLIP, SUM_SCALE = 75.0, 80.0, 1.0 / 128.0

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


def ab_bins(grid: float = 10.0, limit: float = 110.0) -> torch.Tensor:
    """(Q, 2) centres of the full a*b* grid; training keeps those the data uses."""
    c = torch.arange(-limit, limit + 1e-6, grid)
    a, b = torch.meshgrid(c, c, indexing="ij")
    return torch.stack([a.flatten(), b.flatten()], dim=1)
