"""ImageNet-pretrained MobileNetV2 (Sandler et al. 2018) read from an 8-bit TensorFlow Lite file.

    python -m training.mobilenet verify ../shared/weights/tf2_mobilenet_v2_1.0_224_ptq.tflite \
        --data ../shared/data/train --labels ../shared/weights/imagenet_sample_labels.tsv

The flatbuffer is parsed with the `tflite` package from PyPI (the schema's generated reader,
maintained with TensorFlow's schema), each weight tensor is dequantized as
`(q - zero_point) * scale` (one scale per output channel where the file gives several), and
the numbers go into a PyTorch MobileNetV2 of the same shape. Batch norm is already folded into
the convolutions of these files, so every convolution here has a bias and no norm layer.

TFLite pads "SAME": a stride-2 3x3 convolution on an even size pads 0 before and 1 after
(PyTorch's padding=1 pads 1 and 1, which shifts every feature by half a pixel and costs points
of top-1). Stride-2 layers here pad (0, 1) and so expect an even size at each of them:
inputs whose sides are multiples of 32.

Input: (N, 3, H, W) float32 RGB in [-1, 1] (x / 127.5 - 1), the file's own normalisation.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

# (expansion t, output channels c, repeats n, first stride s): Sandler et al. 2018, table 2
MOBILENET_V2_SETTINGS = [
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
]
# index of the last block of each stride (2, 4, 8, 16, 32) in MobileNetV2.blocks
STAGE_ENDS = {2: 0, 4: 2, 8: 5, 16: 12, 32: 16}
STAGE_CHANNELS = {2: 16, 4: 24, 8: 32, 16: 96, 32: 320}
LICENCE = "Apache-2.0 (google-coral/test_data @104342d, Keras ImageNet weights)"


class ConvAct(nn.Module):
    """Conv (bias: batch norm folded) + optional ReLU6, with TFLite SAME padding."""

    def __init__(self, cin: int, cout: int, k: int = 1, stride: int = 1, groups: int = 1, act: bool = True):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride, padding=0, groups=groups, bias=True)
        self.act = act
        # SAME: total padding k - stride for even inputs; TFLite puts the odd pixel after
        total = max(k - stride, 0)
        self.pad = (total // 2, total - total // 2) * 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if any(self.pad):
            x = F.pad(x, self.pad)
        x = self.conv(x)
        return F.relu6(x) if self.act else x

    def fold_same_padding(self) -> None:
        """For export: SAME padding (0 before, 1 after) of a stride-2 3x3 convolution is the
        same as a 4x4 kernel with a zero first row and column and symmetric padding 1 (output i
        reads inputs 2i-1..2i+2, the first always times zero). PyTorch's ONNX export writes an
        F.pad as a dozen shape operations (Slice with step -1 cannot be constant-folded); a
        plain Conv is one node, in every engine."""
        if not any(self.pad):
            return
        if len(set(self.pad)) == 1:  # symmetric (stride 1): the convolution's own padding
            self.conv.padding = (self.pad[0], self.pad[0])
            self.pad = (0, 0, 0, 0)
            return
        if self.pad != (0, 1, 0, 1) or self.conv.kernel_size != (3, 3) or self.conv.stride != (2, 2):
            raise ValueError(f"cannot fold padding {self.pad} of a {self.conv.kernel_size} convolution")
        old = self.conv
        new = nn.Conv2d(old.in_channels, old.out_channels, 4, 2, padding=1, groups=old.groups, bias=True)
        with torch.no_grad():
            new.weight.zero_()
            new.weight[:, :, 1:, 1:] = old.weight
            new.bias.copy_(old.bias)
        self.conv = new
        self.pad = (0, 0, 0, 0)


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, t: int):
        super().__init__()
        hidden = cin * t
        self.expand = ConvAct(cin, hidden, 1) if t != 1 else None
        self.depthwise = ConvAct(hidden, hidden, 3, stride, groups=hidden)
        self.project = ConvAct(hidden, cout, 1, act=False)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.expand(x) if self.expand is not None else x
        y = self.project(self.depthwise(y))
        return x + y if self.residual else y


class MobileNetV2(nn.Module):
    """MobileNetV2 width 1.0. `stages` keeps the blocks up to that stride (32: all 17 blocks);
    `head` adds the 1x1 conv to 1280 channels and the 1001-way classifier (index 0: background)."""

    def __init__(self, stages: int = 32, head: bool = True, in_channels: int = 3):
        super().__init__()
        if stages not in STAGE_ENDS:
            raise ValueError(f"stages must be one of {sorted(STAGE_ENDS)}, got {stages}")
        if head and stages != 32:
            raise ValueError("the classifier head needs all stages (stages=32)")
        self.stem = ConvAct(in_channels, 32, 3, 2)
        blocks, cin = [], 32
        for t, c, n, s in MOBILENET_V2_SETTINGS:
            for i in range(n):
                blocks.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
                cin = c
        self.blocks = nn.ModuleList(blocks[: STAGE_ENDS[stages] + 1])
        self.stages = stages
        self.features_conv = ConvAct(320, 1280, 1) if head else None
        self.classifier = nn.Conv2d(1280, 1001, 1) if head else None

    def fold_same_padding(self) -> None:
        """For export: every stride-2 layer as one plain convolution (ConvAct.fold_same_padding)."""
        for m in self.modules():
            if isinstance(m, ConvAct):
                m.fold_same_padding()

    def forward_stages(self, x: torch.Tensor) -> dict[int, torch.Tensor]:
        """(N, C, H, W) -> {stride: features} at strides 2, 4, 8, 16 (and 32)."""
        out = {}
        x = self.stem(x)
        ends = {v: k for k, v in STAGE_ENDS.items()}
        for i, b in enumerate(self.blocks):
            x = b(x)
            if i in ends:
                out[ends[i]] = x
        return out

    def pooled(self, x32: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Stride-32 features -> (N, 1280) pooled features and (N, 1001) class logits."""
        f = self.features_conv(x32).mean(dim=(2, 3), keepdim=True)
        return f.flatten(1), self.classifier(f).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) RGB in [-1, 1] -> (N, 1001) logits."""
        return self.pooled(self.forward_stages(x)[32])[1]


@dataclass(frozen=True)
class TFLiteTensor:
    name: str
    values: np.ndarray  # dequantized, float32, in the file's layout


def _dequantize(model, buf: bytes, tensor) -> np.ndarray:
    raw = model.Buffers(tensor.Buffer()).DataAsNumpy()
    dtype = {0: np.float32, 2: np.int32, 3: np.uint8, 9: np.int8}[tensor.Type()]
    q = np.frombuffer(raw.tobytes(), dtype=dtype).reshape(tensor.ShapeAsNumpy())
    if dtype == np.float32:
        return q.copy()
    quant = tensor.Quantization()
    scale, zero = quant.ScaleAsNumpy(), quant.ZeroPointAsNumpy()
    axis = quant.QuantizedDimension()
    shape = [1] * q.ndim
    if np.size(scale) > 1:
        shape[axis] = -1
    s = np.asarray(scale, np.float64).reshape(shape)
    z = np.asarray(zero, np.float64).reshape(shape) if np.size(zero) > 1 else float(np.asarray(zero).ravel()[0])
    return ((q.astype(np.float64) - z) * s).astype(np.float32)


def read_tflite_convs(path: Path) -> list[tuple[str, TFLiteTensor, TFLiteTensor]]:
    """Every CONV_2D / DEPTHWISE_CONV_2D of the file in graph order: (op, weight, bias),
    dequantized. Raises ValueError if the file is not a TFLite model."""
    import tflite  # training-only dependency: `pip install tflite`

    buf = Path(path).read_bytes()
    if buf[4:8] != b"TFL3":
        raise ValueError(f"{path} is not a TensorFlow Lite file")
    model = tflite.Model.GetRootAsModel(buf, 0)
    graph = model.Subgraphs(0)
    names = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
    convs = []
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        code = model.OperatorCodes(op.OpcodeIndex())
        kind = names.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()))
        if kind not in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            continue
        w_t, b_t = graph.Tensors(op.Inputs(1)), graph.Tensors(op.Inputs(2))
        convs.append(
            (
                kind,
                TFLiteTensor(w_t.Name().decode(), _dequantize(model, buf, w_t)),
                TFLiteTensor(b_t.Name().decode(), _dequantize(model, buf, b_t)),
            )
        )
    return convs


def load_tflite_weights(net: MobileNetV2, path: Path) -> dict:
    """Copy the file's dequantized weights into `net` (all of its convolutions, in order; a
    truncated `net` takes the first ones). A 1-channel stem takes the sum over R, G, B: the
    same output for gray input (R = G = B). Returns provenance for a model card."""
    convs = read_tflite_convs(path)
    mods = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    if len(mods) > len(convs):
        raise ValueError(f"{path}: {len(convs)} convolutions, the network needs {len(mods)}")
    with torch.no_grad():
        for m, (kind, w, b) in zip(mods, convs):
            if kind == "DEPTHWISE_CONV_2D":  # (1, kh, kw, C) -> (C, 1, kh, kw)
                wt = torch.from_numpy(w.values).permute(3, 0, 1, 2)
            else:  # (O, kh, kw, I) -> (O, I, kh, kw)
                wt = torch.from_numpy(w.values).permute(0, 3, 1, 2)
            if m.weight.shape[1] == 1 and wt.shape[1] == 3 and m.groups == 1:
                wt = wt.sum(dim=1, keepdim=True)
            if tuple(wt.shape) != tuple(m.weight.shape):
                raise ValueError(f"{path}: {w.name} is {tuple(wt.shape)}, expected {tuple(m.weight.shape)}")
            m.weight.copy_(wt)
            m.bias.copy_(torch.from_numpy(b.values))
    return provenance(path)


def provenance(path: Path) -> dict:
    p = Path(path)
    return {
        "file": p.name,
        "sha256": hashlib.sha256(p.read_bytes()).hexdigest(),
        "licence": LICENCE,
        "source": "google-coral/test_data, commit 104342d (the file as ../shared/weights holds it)",
        "what": "MobileNetV2 1.0 ImageNet classifier (Sandler et al. 2018), int8 weights dequantized to float32 "
        "(training/mobilenet.py)",
    }


def pretrained_mobilenet_v2(path: Path, stages: int = 32, head: bool = True, in_channels: int = 3) -> MobileNetV2:
    net = MobileNetV2(stages, head, in_channels)
    net.provenance = load_tflite_weights(net, path)
    return net.eval()


def l_to_gray_rgb(l_norm: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W) (L* - 50) / 50 -> (N, 1, H, W) the gray sRGB value of that lightness in [-1, 1]
    (the classifier's own input scale): inverse CIE L* -> Y, then the sRGB transfer curve."""
    lum = l_norm * 50.0 + 50.0
    fy = (lum + 16.0) / 116.0
    y = torch.where(lum > 8.0, fy**3, lum / (24389.0 / 27.0)).clamp(0.0, 1.0)
    srgb = torch.where(y > 0.0031308, 1.055 * y.clamp_min(0.0031308) ** (1 / 2.4) - 0.055, 12.92 * y)
    return srgb * 2.0 - 1.0


def _centre_crop_rgb(path: Path, size: int = 224) -> np.ndarray:
    import cv2

    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"cannot read {path}")
    h, w = bgr.shape[:2]
    s = min(h, w)
    y0, x0 = (h - s) // 2, (w - s) // 2
    crop = cv2.resize(bgr[y0 : y0 + s, x0 : x0 + s], (size, size), interpolation=cv2.INTER_LINEAR)
    return crop[:, :, ::-1].copy()


def verify(weights: Path, data: Path, labels: Path, limit: int = 0, interpreter: bool = True) -> dict:
    """Top-1/top-5 of the converted network (colour and gray input) on labelled photos, and its
    top-1 agreement with the TFLite interpreter (ai-edge-litert) when that is installed."""
    import csv

    from training.data import rgb_to_lab_torch

    with open(labels, newline="") as f:  # file (relative to data), synset, class_index_0_999, ...
        rows = [(r["file"], int(r["class_index_0_999"])) for r in csv.DictReader(f, delimiter="\t")]
    if limit:
        rows = rows[:limit]
    net = pretrained_mobilenet_v2(weights)
    interp = None
    if interpreter:
        try:
            from ai_edge_litert.interpreter import Interpreter

            interp = Interpreter(model_path=str(weights))
            interp.allocate_tensors()
            inp, outp = interp.get_input_details()[0], interp.get_output_details()[0]
        except ImportError:
            interp = None
    top1 = top5 = top1_gray = agree = 0
    tfl_top1 = 0
    for name, label in rows:
        rgb = _centre_crop_rgb(data / name)
        x = torch.from_numpy(rgb[None].astype(np.float32) / 127.5 - 1).permute(0, 3, 1, 2)
        # gray: L* of the photo as the gray sRGB of that lightness on R, G, B (what a colorizer sees)
        lab = rgb_to_lab_torch(x[:1] * 0.5 + 0.5)
        x = torch.cat([x, l_to_gray_rgb((lab[:, :1] - 50.0) / 50.0).expand(-1, 3, -1, -1)])
        with torch.no_grad():
            logits = net(x)[:, 1:]  # drop background
        order = logits[0].argsort(descending=True)
        top1 += int(order[0] == label)
        top5 += int(label in order[:5].tolist())
        top1_gray += int(logits[1].argmax() == label)
        if interp is not None:
            interp.set_tensor(inp["index"], rgb[None].astype(inp["dtype"]))
            interp.invoke()
            t = interp.get_tensor(outp["index"])[0].astype(np.float32)[1:]
            agree += int(t.argmax() == order[0])
            tfl_top1 += int(t.argmax() == label)
    n = len(rows)
    out = {
        "photos": n,
        "top1": top1 / n,
        "top5": top5 / n,
        "top1_gray": top1_gray / n,
        "weights": provenance(weights),
    }
    if interp is not None:
        out.update({"interpreter_top1": tfl_top1 / n, "agreement_top1": agree / n})
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    v = sub.add_parser("verify", help="top-1 of the converted network and agreement with the interpreter")
    v.add_argument("weights", type=Path)
    v.add_argument("--data", type=Path, required=True)
    v.add_argument("--labels", type=Path, required=True)
    v.add_argument("--limit", type=int, default=0)
    v.add_argument("--out", type=Path, help="write the figures as JSON")
    a = ap.parse_args(argv)
    res = verify(a.weights, a.data, a.labels, a.limit)
    print(json.dumps(res, indent=2))
    if a.out:
        a.out.write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()
