"""The published colorization networks as ONNX graphs with random weights (no PyTorch).

Speed does not depend on weight values, so each architecture is rebuilt layer by layer
with onnx.helper and timed in the same ONNX Runtime as our student:

- zhang2016: "Colorful Image Colorization" (Zhang, Isola, Efros 2016), the network the
  OpenCV DNN sample runs: 8 conv blocks (64-128-256-512-512(d2)-512(d2)-512-256), 313-way
  head at 1/4 size, input 224x224. Batch norm folded away (inference).
- pix2pix_unet: the Pix2Pix U-Net generator (Isola et al. 2017): 8 stride-2 4x4 convs
  (64-128-256-512x5), mirrored transposed convs with skip concatenation, 256x256.
- resnet18_unet / resnet101_unet: a U-Net decoder (fastai DynamicUnet-like: at each scale
  a 3x3 conv on upsampled + skip) on a ResNet-18 encoder (the Shariatnia tutorial's
  generator, 256x256) or ResNet-101 (DeOldify's video generator, 336x336).
- fusion_irv2: "Deep Koalarization" (Baldassarre, Gonzalez Morin, Rodes-Guirao 2017): conv
  encoder + Inception-ResNet-v2 global features (the gray image resized to 299x299 inside
  the graph) + fusion + decoder, 224x224.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper


class GraphBuilder:
    """Tiny helper: NCHW float32 convs with random weights, ReLU, concat, resize."""

    def __init__(self, name: str, channels: int, seed: int = 0):
        self.name = name
        self.nodes: list = []
        self.inits: list = []
        self.rng = np.random.default_rng(seed)
        self.n = 0
        self.input = helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, channels, None, None])

    def _id(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}{self.n}"

    def _const(self, arr: np.ndarray) -> str:
        name = self._id("w")
        self.inits.append(helper.make_tensor(name, TensorProto.FLOAT, arr.shape, arr.astype(np.float32).ravel()))
        return name

    def conv(self, x: str, cin: int, cout: int, k: int = 3, stride: int = 1, dilation: int = 1, relu: bool = True):
        w = self._const(self.rng.normal(0, (2.0 / (cin * k * k)) ** 0.5, (cout, cin, k, k)))
        b = self._const(np.zeros(cout))
        pad = dilation * (k - 1) // 2 if k % 2 else (k - 2) // 2  # 4x4 stride 2: pad 1 halves exactly
        pads = [pad] * 4
        y = self._id("c")
        self.nodes.append(
            helper.make_node(
                "Conv",
                [x, w, b],
                [y],
                kernel_shape=[k, k],
                strides=[stride, stride],
                dilations=[dilation, dilation],
                pads=pads,
            )
        )
        return self.relu(y) if relu else y

    def deconv(self, x: str, cin: int, cout: int):
        """4x4 stride-2 transposed conv (x2 size), as in Pix2Pix."""
        w = self._const(self.rng.normal(0, (2.0 / (cin * 16)) ** 0.5, (cin, cout, 4, 4)))
        y = self._id("d")
        self.nodes.append(
            helper.make_node("ConvTranspose", [x, w], [y], kernel_shape=[4, 4], strides=[2, 2], pads=[1, 1, 1, 1])
        )
        return self.relu(y)

    def relu(self, x: str) -> str:
        y = self._id("r")
        self.nodes.append(helper.make_node("Relu", [x], [y]))
        return y

    def add(self, a: str, b: str) -> str:
        y = self._id("a")
        self.nodes.append(helper.make_node("Add", [a, b], [y]))
        return y

    def concat(self, a: str, b: str, *more: str) -> str:
        y = self._id("cat")
        self.nodes.append(helper.make_node("Concat", [a, b, *more], [y], axis=1))
        return y

    def conv_rect(
        self, x: str, cin: int, cout: int, kh: int, kw: int, stride: int = 1, valid: bool = False, relu: bool = True
    ) -> str:
        """Rectangular kernels (Inception's 1x7, 7x1...), 'same' padding or none (valid)."""
        w = self._const(self.rng.normal(0, (2.0 / (cin * kh * kw)) ** 0.5, (cout, cin, kh, kw)))
        b = self._const(np.zeros(cout))
        pads = [0, 0, 0, 0] if valid else [(kh - 1) // 2, (kw - 1) // 2, (kh - 1) // 2, (kw - 1) // 2]
        y = self._id("c")
        self.nodes.append(
            helper.make_node("Conv", [x, w, b], [y], kernel_shape=[kh, kw], strides=[stride, stride], pads=pads)
        )
        return self.relu(y) if relu else y

    def op(self, op_type: str, inputs: list[str], **attrs) -> str:
        y = self._id(op_type[:3].lower())
        self.nodes.append(helper.make_node(op_type, inputs, [y], **attrs))
        return y

    def scalar(self, v: float) -> str:
        return self._const(np.array(v, np.float32))

    def maxpool(self, x: str) -> str:
        y = self._id("p")
        self.nodes.append(helper.make_node("MaxPool", [x], [y], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]))
        return y

    def up2(self, x: str) -> str:
        scales = self._const(np.array([1, 1, 2, 2], np.float32))
        y = self._id("u")
        self.nodes.append(helper.make_node("Resize", [x, "", scales], [y], mode="nearest"))
        return y

    def up_to(self, x: str, like: str) -> str:
        """Nearest resize of x to like's H, W (odd sizes such as DeOldify's 336 = 10.5 x 32)."""
        shape, hw, y = self._id("s"), self._id("hw"), self._id("u")
        start = helper.make_tensor(self._id("i"), TensorProto.INT64, [1], [2])
        end = helper.make_tensor(self._id("i"), TensorProto.INT64, [1], [4])
        self.inits += [start, end]
        self.nodes.append(helper.make_node("Shape", [like], [shape]))
        self.nodes.append(helper.make_node("Slice", [shape, start.name, end.name], [hw]))
        self.nodes.append(helper.make_node("Resize", [x, "", "", hw], [y], mode="nearest", axes=[2, 3]))
        return y

    def model(self, out: str, out_channels: int) -> onnx.ModelProto:
        output = helper.make_tensor_value_info(out, TensorProto.FLOAT, [None, out_channels, None, None])
        graph = helper.make_graph(self.nodes, self.name, [self.input], [output], self.inits)
        m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
        m.ir_version = 8
        return m


def zhang2016() -> onnx.ModelProto:
    g = GraphBuilder("zhang2016", 1)
    x = "x"
    spec = [  # (cout, n convs, stride of the last, dilation)
        (64, 2, 2, 1),
        (128, 2, 2, 1),
        (256, 3, 2, 1),
        (512, 3, 1, 1),
        (512, 3, 1, 2),
        (512, 3, 1, 2),
        (512, 3, 1, 1),
    ]
    cin = 1
    for cout, n, stride, dil in spec:
        for i in range(n):
            x = g.conv(x, cin, cout, 3, stride if i == n - 1 else 1, dil)
            cin = cout
    x = g.deconv(x, 512, 256)  # conv8: back to 1/4
    x = g.conv(x, 256, 256)
    x = g.conv(x, 256, 256)
    x = g.conv(x, 256, 313, 1, relu=False)
    return g.model(x, 313)


def pix2pix_unet() -> onnx.ModelProto:
    g = GraphBuilder("pix2pix_unet", 1)
    chans = [64, 128, 256, 512, 512, 512, 512, 512]
    skips, x, cin = [], "x", 1
    for c in chans:
        x = g.conv(x, cin, c, 4, 2)
        skips.append((x, c))
        cin = c
    for skip, c in reversed(skips[:-1]):
        x = g.deconv(x, cin, c)
        x = g.concat(x, skip)
        cin = 2 * c
    x = g.deconv(x, cin, 2)
    return g.model(x, 2)


def _resnet_unet(name: str, blocks: list[int], bottleneck: bool) -> onnx.ModelProto:
    g = GraphBuilder(name, 1)
    x = g.conv("x", 1, 64, 7, 2)  # 1/2
    skips = [(x, 64)]
    x = g.maxpool(x)  # 1/4
    cin = 64
    widths = [64, 128, 256, 512]
    for stage, (n, w) in enumerate(zip(blocks, widths)):
        cout = w * 4 if bottleneck else w
        for i in range(n):
            stride = 2 if (i == 0 and stage > 0) else 1
            short = x if (stride == 1 and cin == cout) else g.conv(x, cin, cout, 1, stride, relu=False)
            if bottleneck:
                y = g.conv(x, cin, w, 1)
                y = g.conv(y, w, w, 3, stride)
                y = g.conv(y, w, cout, 1, relu=False)
            else:
                y = g.conv(x, cin, w, 3, stride)
                y = g.conv(y, w, cout, 3, relu=False)
            x = g.relu(g.add(y, short))
            cin = cout
        skips.append((x, cout))
    for skip, c in reversed(skips[:-1]):
        x = g.concat(g.up_to(x, skip), skip)
        out = max(c, 64)
        x = g.conv(x, cin + c, out)
        x = g.conv(x, out, out)
        cin = out
    x = g.conv(g.up2(x), cin, 2, 3, relu=False)
    return g.model(x, 2)


def resnet18_unet() -> onnx.ModelProto:
    return _resnet_unet("resnet18_unet", [2, 2, 2, 2], bottleneck=False)


def resnet101_unet() -> onnx.ModelProto:
    return _resnet_unet("resnet101_unet", [3, 4, 23, 3], bottleneck=True)


def _inception_resnet_v2(g: GraphBuilder, x: str) -> str:
    """Inception-ResNet-v2 (Szegedy et al. 2017; timm's inception_resnet_v2 layer for layer,
    batch norm folded away) on a (N, 3, 299, 299) input -> (N, 1000, 1, 1) logits."""
    c = g.conv_rect
    maxpool = lambda t: g.op("MaxPool", [t], kernel_shape=[3, 3], strides=[2, 2])  # noqa: E731
    x = c(x, 3, 32, 3, 3, 2, valid=True)
    x = c(x, 32, 32, 3, 3, valid=True)
    x = c(x, 32, 64, 3, 3)
    x = maxpool(x)
    x = c(x, 64, 80, 1, 1)
    x = c(x, 80, 192, 3, 3, valid=True)
    x = maxpool(x)
    # mixed_5b -> 320
    b3 = g.op("AveragePool", [x], kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1], count_include_pad=0)
    x = g.concat(
        c(x, 192, 96, 1, 1),
        c(c(x, 192, 48, 1, 1), 48, 64, 5, 5),
        c(c(c(x, 192, 64, 1, 1), 64, 96, 3, 3), 96, 96, 3, 3),
        c(b3, 192, 64, 1, 1),
    )

    def residual(t: str, branches: str, cin: int, cout: int, scale: float, relu: bool = True) -> str:
        up = c(branches, cin, cout, 1, 1, relu=False)
        out = g.add(t, g.op("Mul", [up, g.scalar(scale)]))
        return g.relu(out) if relu else out

    for _ in range(10):  # block35
        br = g.concat(
            c(x, 320, 32, 1, 1),
            c(c(x, 320, 32, 1, 1), 32, 32, 3, 3),
            c(c(c(x, 320, 32, 1, 1), 32, 48, 3, 3), 48, 64, 3, 3),
        )
        x = residual(x, br, 128, 320, 0.17)
    # mixed_6a -> 1088
    x = g.concat(
        c(x, 320, 384, 3, 3, 2, valid=True),
        c(c(c(x, 320, 256, 1, 1), 256, 256, 3, 3), 256, 384, 3, 3, 2, valid=True),
        maxpool(x),
    )
    for _ in range(20):  # block17
        br = g.concat(c(x, 1088, 192, 1, 1), c(c(c(x, 1088, 128, 1, 1), 128, 160, 1, 7), 160, 192, 7, 1))
        x = residual(x, br, 384, 1088, 0.10)
    # mixed_7a -> 2080
    x = g.concat(
        c(c(x, 1088, 256, 1, 1), 256, 384, 3, 3, 2, valid=True),
        c(c(x, 1088, 256, 1, 1), 256, 288, 3, 3, 2, valid=True),
        c(c(c(x, 1088, 256, 1, 1), 256, 288, 3, 3), 288, 320, 3, 3, 2, valid=True),
        maxpool(x),
    )
    for i in range(10):  # 9 x block8, then one without the ReLU
        br = g.concat(c(x, 2080, 192, 1, 1), c(c(c(x, 2080, 192, 1, 1), 192, 224, 1, 3), 224, 256, 3, 1))
        x = residual(x, br, 448, 2080, 0.20 if i < 9 else 1.0, relu=i < 9)
    x = c(x, 2080, 1536, 1, 1)
    x = g.op("GlobalAveragePool", [x])
    return c(x, 1536, 1000, 1, 1, relu=False)  # the classifier, as a 1x1 conv on the pooled vector


def fusion_koalarization() -> onnx.ModelProto:
    """Deep Koalarization (Baldassarre et al. 2017): conv encoder on L (224x224 -> 28x28x256),
    Inception-ResNet-v2 on the gray image at 299x299 (3 channels) giving a 1000-d vector,
    fused by tiling it over the 28x28 grid + a 1x1 conv, conv decoder with 3 upsamplings."""
    g = GraphBuilder("fusion_koalarization", 1)
    enc = "x"
    for cin, cout, stride in [(1, 64, 2), (64, 128, 1), (128, 128, 2), (128, 256, 1), (256, 256, 2),
                              (256, 512, 1), (512, 512, 1), (512, 256, 1)]:  # fmt: skip
        enc = g.conv(enc, cin, cout, 3, stride)
    scales = g._const(np.array([1, 1, 299 / 224, 299 / 224], np.float32))
    gray299 = g.op("Resize", ["x", "", scales], mode="linear")
    emb = _inception_resnet_v2(g, g.concat(gray299, gray299, gray299))
    tile = helper.make_tensor(g._id("i"), TensorProto.INT64, [4], [1, 1, 28, 28])
    g.inits.append(tile)
    fused = g.conv(g.concat(enc, g.op("Expand", [emb, tile.name])), 1256, 256, 1)
    x = g.conv(fused, 256, 128)
    x = g.conv(g.up2(x), 128, 64)
    x = g.conv(x, 64, 64)
    x = g.conv(g.up2(x), 64, 32)
    x = g.op("Tanh", [g.conv(x, 32, 2, relu=False)])
    return g.model(g.up2(x), 2)


# name -> (builder, native input (H, W), what it is)
PUBLISHED = {
    "zhang2016": (zhang2016, (224, 224), "Zhang et al. 2016, the OpenCV DNN colorization sample's network"),
    "pix2pix_unet": (pix2pix_unet, (256, 256), "Pix2Pix U-Net generator, 8 downsamplings"),
    "resnet18_unet": (resnet18_unet, (256, 256), "ResNet-18 U-Net (Shariatnia tutorial generator)"),
    "resnet101_unet": (resnet101_unet, (336, 336), "ResNet-101 U-Net (DeOldify video generator)"),
    "fusion_irv2": (
        fusion_koalarization,
        (224, 224),
        "Fusion network with Inception-ResNet-v2 (Baldassarre et al. 2017; the gray image at 299x299 inside)",
    ),
}
