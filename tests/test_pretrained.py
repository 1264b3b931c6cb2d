"""The ImageNet MobileNetV2 read from TensorFlow Lite (training/mobilenet.py), the students and
teachers built on it, the archival degradations and the validation split (issue 13)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="training needs PyTorch")
pytestmark = pytest.mark.train

REAL_WEIGHTS = Path(__file__).resolve().parents[2] / "shared" / "weights" / "tf2_mobilenet_v2_1.0_224_ptq.tflite"
needs_tflite = pytest.mark.skipif(
    importlib.util.find_spec("tflite") is None, reason="the TFLite reader needs `pip install tflite`"
)


@needs_tflite
def test_reader_dequantizes_per_channel_into_pytorch_layout(tmp_path):
    """A file the test writes (int8 weights, a scale and zero point per output channel, int32
    biases) comes out as (q - zero) * scale in PyTorch's (O, I, kh, kw) / depthwise layout."""
    from tests.tflite_writer import conv_shapes, write_tflite
    from training.mobilenet import MobileNetV2, load_tflite_weights

    net = MobileNetV2(stages=8, head=False)
    path = tmp_path / "mnv2.tflite"
    truth = write_tflite(path, conv_shapes(net))
    prov = load_tflite_weights(net, path)
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == len(truth) == 18  # stem + block 0 (depthwise, project) + blocks 1-5 (3 each)
    for conv, t in zip(convs, truth):
        w = t["weight"]
        expect = w.transpose(3, 0, 1, 2) if t["kind"] == "DEPTHWISE_CONV_2D" else w.transpose(0, 3, 1, 2)
        np.testing.assert_allclose(conv.weight.detach().numpy(), expect, rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(conv.bias.detach().numpy(), t["bias"], rtol=1e-6)
    assert len(prov["sha256"]) == 64 and prov["file"] == "mnv2.tflite" and "Apache-2.0" in prov["licence"]


@needs_tflite
def test_one_channel_stem_sums_rgb_weights(tmp_path):
    """A gray input through the 1-channel stem equals R = G = B through the 3-channel one."""
    from tests.tflite_writer import conv_shapes, write_tflite
    from training.mobilenet import MobileNetV2, load_tflite_weights

    rgb_net, gray_net = MobileNetV2(stages=4, head=False), MobileNetV2(stages=4, head=False, in_channels=1)
    path = tmp_path / "mnv2.tflite"
    write_tflite(path, conv_shapes(rgb_net))
    load_tflite_weights(rgb_net, path)
    load_tflite_weights(gray_net, path)
    g = torch.rand(2, 1, 64, 96) * 2 - 1
    with torch.no_grad():
        a, b = rgb_net.forward_stages(g.expand(-1, 3, -1, -1)), gray_net.forward_stages(g)
    for s in (2, 4):
        torch.testing.assert_close(a[s], b[s], rtol=1e-3, atol=2e-3)  # float sums in another order


def test_reader_refuses_other_files(tmp_path):
    pytest.importorskip("tflite", reason="the TFLite reader needs `pip install tflite`")
    from training.mobilenet import read_tflite_convs

    bad = tmp_path / "x.tflite"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(ValueError, match="not a TensorFlow Lite file"):
        read_tflite_convs(bad)


def test_same_padding_matches_tflite_geometry():
    """Stride-2 layers pad 0 before and 1 after (TFLite SAME on even sizes): an impulse at the
    last row/column still reaches the output's last row/column, one at row 0 only the first."""
    from training.mobilenet import ConvAct

    conv = ConvAct(1, 1, 3, 2, act=False)
    with torch.no_grad():
        conv.conv.weight.fill_(1.0)
        conv.conv.bias.zero_()
        x = torch.zeros(1, 1, 8, 8)
        x[0, 0, 0, 0] = 1.0
        y = conv(x)[0, 0]
    assert y.shape == (4, 4)
    assert y[0, 0] == 1.0 and y.sum() == 1.0  # SAME: window of output 0 covers input rows 0..2


def test_l_to_gray_rgb_is_the_srgb_of_that_lightness():
    from streamcolor import color
    from training.mobilenet import l_to_gray_rgb

    lum = np.array([0.0, 5.0, 20.0, 50.0, 80.0, 100.0], np.float32)
    lab = np.stack([lum, np.zeros_like(lum), np.zeros_like(lum)], -1)[None]
    expect = color.lab_to_rgb(lab)[0, :, 0] * 2 - 1
    got = l_to_gray_rgb(torch.from_numpy((lum - 50) / 50)[None, None])[0, 0].numpy()
    np.testing.assert_allclose(got, expect, atol=2e-3)


@pytest.mark.skipif(not REAL_WEIGHTS.exists(), reason=f"{REAL_WEIGHTS} not present (read-only shared weights)")
def test_conversion_agrees_with_the_tflite_interpreter():
    """The real file: our float network and the TFLite interpreter (ai-edge-litert) give the
    same stem features (within the int8 activations' quantization) and the same top-1 class on
    a few made-up pictures."""
    pytest.importorskip("tflite", reason="the TFLite reader needs `pip install tflite`")
    litert = pytest.importorskip("ai_edge_litert.interpreter", reason="the interpreter: pip install ai-edge-litert")
    from training.mobilenet import pretrained_mobilenet_v2

    net = pretrained_mobilenet_v2(REAL_WEIGHTS)
    interp = litert.Interpreter(model_path=str(REAL_WEIGHTS), experimental_preserve_all_tensors=True)
    interp.allocate_tensors()
    inp, outp = interp.get_input_details()[0], interp.get_output_details()[0]
    stem = next(t for t in interp.get_tensor_details() if t["name"].startswith("MobileNetV2/Conv2d_0_0/relu6"))
    rng = np.random.default_rng(0)
    agree = 0
    for _ in range(4):
        # smooth random pictures: blobs of colour, like photos rather than white noise
        small = rng.integers(0, 256, size=(7, 7, 3)).astype(np.uint8)
        img = np.asarray(
            torch.nn.functional.interpolate(
                torch.from_numpy(small).permute(2, 0, 1)[None].float(), size=(224, 224), mode="bicubic"
            )[0]
            .permute(1, 2, 0)
            .clamp(0, 255)
            .round()
            .byte()
        )
        interp.set_tensor(inp["index"], img[None].astype(inp["dtype"]))
        interp.invoke()
        scale, zero = stem["quantization"]
        ref_stem = (interp.get_tensor(stem["index"]).astype(np.float32) - zero) * scale
        x = torch.from_numpy(img.astype(np.float32) / 127.5 - 1).permute(2, 0, 1)[None]
        with torch.no_grad():
            ours_stem = net.stem(x).permute(0, 2, 3, 1).numpy()
            logits = net(x)[0]
        assert ours_stem.shape == ref_stem.shape
        assert np.abs(ours_stem - ref_stem).max() < 4 * scale + 0.02
        agree += int(logits.argmax() == interp.get_tensor(outp["index"])[0].argmax())
    assert agree >= 3


def test_validation_split_shares_no_source_with_eval():
    from training.data import EVAL_KIN_FOLDERS, VALIDATION_FOLDERS, is_validation

    assert all(is_validation(f"{f}/{i:05d}.jpg") for f in VALIDATION_FOLDERS for i in range(50))
    assert not any(is_validation(f"{f}/{i:05d}.jpg") for f in EVAL_KIN_FOLDERS for i in range(2000))
    other = [is_validation(f"weather/{i:05d}.jpg") for i in range(4000)]
    assert 0.01 < np.mean(other) < 0.06  # the hashed 3 % of the other folders


def test_degradations_change_lightness_only_and_are_reproducible(tmp_path):
    import cv2

    from streamcolor import color
    from training.degrade import degrade_folder, degrade_l

    lum = torch.linspace(10, 90, 64 * 64).reshape(1, 1, 64, 64).repeat(8, 1, 1, 1)
    a = degrade_l(lum, torch.Generator().manual_seed(1), p=1.0)
    b = degrade_l(lum, torch.Generator().manual_seed(1), p=1.0)
    assert torch.equal(a, b) and a.shape == lum.shape
    assert float(a.min()) >= 0 and float(a.max()) <= 100
    assert all(float((a[i] - lum[i]).abs().mean()) > 0.5 for i in range(8))  # every image degraded
    assert torch.equal(degrade_l(lum, torch.Generator().manual_seed(1), p=0.0), lum)

    # the degraded copy of a folder keeps each photo's a*b* where the gamut allows
    src = tmp_path / "photos"
    src.mkdir()
    rgb = np.zeros((48, 64, 3), np.uint8)
    rgb[:, :32] = (180, 90, 60)
    rgb[:, 32:] = (60, 110, 170)
    cv2.imwrite(str(src / "p.png"), rgb[..., ::-1])
    assert degrade_folder(src, tmp_path / "out") == 1
    out = cv2.imread(str(tmp_path / "out" / "p.png"))[..., ::-1]
    lab_in = color.rgb_to_lab(rgb.astype(np.float32) / 255)
    lab_out = color.rgb_to_lab(out.astype(np.float32) / 255)
    assert np.abs(lab_out[..., 0] - lab_in[..., 0]).mean() > 1.0
    for sl in (np.s_[8:40, 4:28], np.s_[8:40, 36:60]):  # away from the edge between the halves
        assert np.abs(np.median(lab_out[sl][..., 1:], axis=(0, 1)) - lab_in[sl][..., 1:].mean(axis=(0, 1))).max() < 6


def test_mobile_student_exports_and_matches_torch(tmp_path):
    pytest.importorskip("onnx")
    import onnxruntime as ort

    from training.export import export
    from training.student import MobileStudent, ab_bins, student_from_checkpoint

    bins = ab_bins()[::3]
    torch.manual_seed(0)
    for stages in (16, 32):
        m = MobileStudent(bins, stages=stages, decoder=(32, 24, 16)).eval()
        ck = {"arch": "mobile", "stages": stages, "decoder": [32, 24, 16], "bins": bins, "state_dict": m.state_dict()}
        m2 = student_from_checkpoint(ck, temperature=0.5).eval()
        x = torch.rand(2, 1, 64, 96) * 2 - 1
        with torch.no_grad():
            y = m2(x)
        assert y.shape == (2, 2, 16, 24)
        m2.fold_head()
        diff = export(m2, tmp_path / f"m{stages}.onnx", None)
        assert diff < 1e-3
        sess = ort.InferenceSession(str(tmp_path / f"m{stages}.onnx"), providers=["CPUExecutionProvider"])
        got = sess.run(None, {"l": x.numpy()})[0]
        np.testing.assert_allclose(got, y.numpy(), atol=1e-3)


def test_hint_channels_start_at_zero():
    from training.student import MobileStudent, ab_bins

    m = MobileStudent(ab_bins()[::4], stages=16, decoder=(16, 16, 16), hints=True).eval()
    x = torch.rand(1, 1, 64, 64) * 2 - 1
    hints = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(m(x), m(x, hints))


def test_gated_hints_leave_the_automatic_result_exactly_as_it_was_whatever_the_branch_learned():
    from training.student import MobileStudent, ab_bins
    from training.train_student import parse_variants

    assert parse_variants("m16a0.5ig")[0]["hints"] == "gated" and parse_variants("m16a0.5ih")[0]["hints"] is True
    torch.manual_seed(0)
    base = MobileStudent(ab_bins()[::4], stages=16, decoder=(16, 16, 16)).eval()
    gated = MobileStudent(ab_bins()[::4], stages=16, decoder=(16, 16, 16), hints="gated").eval()
    missing, unexpected = gated.load_state_dict(base.state_dict(), strict=False)
    assert not unexpected and all(k.startswith("hint") for k in missing)
    with torch.no_grad():
        for name, p in gated.named_parameters():  # a branch that has learned something
            if name.startswith("hint"):
                p.copy_(torch.randn_like(p) * 0.3)
        x = torch.rand(2, 1, 64, 96) * 2 - 1
        assert torch.equal(gated(x), base(x))
        assert torch.equal(gated(x, torch.zeros(2, 3, 64, 96)), base(x))
        hints = torch.zeros(2, 3, 64, 96)
        hints[0, 2, 30, 40], hints[0, 0, 30, 40] = 1.0, 0.5  # a hint on the first photo only
        out = gated(x, hints)
        assert not torch.allclose(out[0], base(x)[0]) and torch.equal(out[1], base(x)[1])
    gated.frozen_bn = True
    gated.train()
    assert all(not m.training for m in gated.modules() if isinstance(m, torch.nn.BatchNorm2d))


@needs_tflite
def test_teachers_on_the_pretrained_backbone_train_a_step(tmp_path):
    """Both teachers and the MobileNetV2 perceptual loss take the weights file, run forward and
    backward, and the trainer writes a checkpoint whose card-facing options load again."""
    from tests.tflite_writer import conv_shapes, write_tflite
    from training.losses import MobileNetPerceptual
    from training.mobilenet import MobileNetV2
    from training.teachers import create_generator

    path = tmp_path / "mnv2.tflite"
    write_tflite(path, conv_shapes(MobileNetV2(32, head=True, in_channels=3)))
    x = torch.rand(2, 1, 64, 64) * 2 - 1
    for name, opts in (
        ("pix2pix_mobilenet", {"weights": str(path), "width": 16}),
        ("fusion", {"backbone": "mobilenet_v2", "pretrained": str(path)}),
    ):
        g = create_generator(name, **opts, log=lambda m: None)
        y = g(x)
        assert y.shape == (2, 2, 64, 64) and float(y.detach().abs().max()) <= 1.0
        y.mean().backward()
    perc = MobileNetPerceptual(path, log=lambda m: None)
    a = torch.rand(1, 3, 64, 64, requires_grad=True)
    loss = perc(a, torch.rand(1, 3, 64, 64))
    loss.backward()
    assert float(loss) > 0 and a.grad is not None
    assert not any(p.requires_grad for p in perc.parameters())


def test_folding_the_classifier_into_the_fusion_layer_is_exact():
    from training.student import MobileStudent, ab_bins

    torch.manual_seed(0)
    m = MobileStudent(ab_bins()[::4], stages=32, decoder=(16, 16, 16)).eval()
    torch.nn.init.normal_(m.encoder.classifier.weight, std=0.05)  # as if pretrained: not ~0
    x = torch.rand(2, 1, 64, 64) * 2 - 1
    with torch.no_grad():
        before = m(x)
        n_before = sum(p.numel() for p in m.parameters())
        m.fold_classifier()
        after = m(x)
    torch.testing.assert_close(after, before, rtol=1e-4, atol=1e-3)
    assert n_before - sum(p.numel() for p in m.parameters()) > 1_000_000


def test_same_padding_folds_into_a_plain_convolution():
    from training.mobilenet import MobileNetV2

    torch.manual_seed(0)
    net = MobileNetV2(stages=16, head=False)
    for mod in net.modules():  # non-zero biases, as pretrained weights have
        if isinstance(mod, torch.nn.Conv2d):
            torch.nn.init.normal_(mod.bias, std=0.1)
    x = torch.rand(1, 3, 64, 96) * 2 - 1
    with torch.no_grad():
        before = net.forward_stages(x)
        net.fold_same_padding()
        after = net.forward_stages(x)
    assert not any(
        isinstance(m, torch.nn.Conv2d) and m.stride == (2, 2) and m.kernel_size != (4, 4) for m in net.modules()
    )
    for s in before:
        torch.testing.assert_close(after[s], before[s], rtol=1e-4, atol=1e-4)


def test_selection_rule_prefers_psnr_among_colourful_enough_candidates():
    from training.select import pick

    def row(name, psnr, cf, ciede):
        return {
            "model": name,
            "ours": {"psnr": psnr, "colourfulness_ratio": cf, "ciede2000": ciede},
            "gray": {"ciede2000": 11.0},
        }

    rows = [
        row("gray-ish", 24.5, 0.6, 10.0),
        row("a", 24.0, 0.85, 10.2),
        row("b", 24.2, 0.81, 10.5),
        row("bad", 25, 0.9, 11.5),
    ]
    assert pick(rows, 0.8)["model"] == "b"
    assert pick(rows, 0.95) is None


@needs_tflite
def test_mobile_student_trains_resumes_and_exports_with_provenance(tmp_path):
    """train_student with an m variant on a backbone file the test writes: degradations,
    L*a*b* cache, frozen early layers, a resumable checkpoint, --resume, then export: the card
    names the backbone file and its SHA-256, and the model colorizes through the runtime."""
    import cv2

    from tests.media import scene
    from tests.tflite_writer import conv_shapes, write_tflite
    from training import export, pack, train_student
    from training.mobilenet import MobileNetV2

    weights = tmp_path / "mnv2.tflite"
    write_tflite(weights, conv_shapes(MobileNetV2(32, head=True, in_channels=3)))
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(6):
        cv2.imwrite(str(photos / f"p{i}.png"), scene(64, 64, 5 * i)[..., ::-1])
    packed = tmp_path / "p.npz"
    pack.main(["--data", str(photos), "--out", str(packed), "--size", "64"])
    out = tmp_path / "run"
    args = ["--pack", str(packed), "--out", str(out), "--variants", "m16a0.5", "--backbone", str(weights),
            "--batch", "2", "--crop", "64", "--degrade", "0.5", "--lab-cache", "--freeze-stride", "4",
            "--threads", "1", "--save-minutes", "0", "--device", "cpu", "--decoder", "16,16,16"]  # fmt: skip
    train_student.main([*args, "--minutes", "0.02"])
    first = torch.load(out / "last.pt", weights_only=False)
    train_student.main([*args, "--minutes", "0.04", "--resume"])
    assert torch.load(out / "last.pt", weights_only=False)["step"] > first["step"]
    ck = torch.load(out / "student_m16a0.5.pt", weights_only=False)
    assert ck["arch"] == "mobile" and ck["degrade"] == 0.5 and ck["backbone"]["file"] == "mnv2.tflite"
    onnx_path = tmp_path / "m.onnx"
    export.main([str(out / "student_m16a0.5.pt"), "--out", str(onnx_path), "--short-side", "64"])
    card = json.loads(onnx_path.with_suffix(".json").read_text())
    assert card["pretrained_backbone"]["sha256"] == ck["backbone"]["sha256"] and card["input"]["multiple"] == 32
    from streamcolor.colorizer import Colorizer
    from streamcolor.engines.registry import create_engine
    from streamcolor.model import load_card

    c = load_card(onnx_path)
    rgb = Colorizer(create_engine("onnx", c, 1), c).colorize_luma(np.full((48, 80), 120, np.uint8))
    assert rgb.shape == (48, 80, 3)

    # a cast-loss variant fine-tuned from it, averaged with its start (training/wise.py): the
    # card says both the cast weight and what the weights are an average of
    from training import wise

    tuned = tmp_path / "tuned"
    a2 = [*args[: args.index("--variants")], "--variants", "m16a0.5c1i", *args[args.index("--variants") + 2 :]]
    a2[a2.index("--out") + 1] = str(tuned)
    train_student.main([*a2, "--init", str(out / "student_m16a0.5.pt"), "--minutes", "0.02"])
    ck2 = torch.load(tuned / "student_m16a0.5c1i.pt", weights_only=False)
    assert ck2["cast_weight"] == 1.0 and ck2["cast_temperature"] == 0.6
    wise.main([str(tuned / "student_m16a0.5c1i.pt"), str(out / "student_m16a0.5.pt"), "--lam", "0.5",
               "--out", str(tmp_path / "mix.pt")])  # fmt: skip
    export.main([str(tmp_path / "mix.pt"), "--out", str(tmp_path / "mix.onnx"), "--short-side", "64"])
    t = json.loads((tmp_path / "mix.json").read_text())["training"]
    assert t["cast_weight"] == 1.0
    assert t["weight_average"] == {"a": "student_m16a0.5c1i.pt", "b": "student_m16a0.5.pt", "lam": 0.5}


def test_archival_sheet_puts_models_side_by_side(tmp_path):
    import cv2

    from streamcolor.model import DEFAULT_MODEL
    from tests.media import make_video, scene
    from training.archival_sheet import sheet

    photos = tmp_path / "photos"
    photos.mkdir()
    cv2.imwrite(str(photos / "a.png"), cv2.cvtColor(scene(50, 100, 1), cv2.COLOR_RGB2GRAY))
    clip = make_video(tmp_path / "film.mp4", width=96, height=64, frames=5, audio=False)
    img = sheet([photos, clip], [DEFAULT_MODEL, DEFAULT_MODEL], ["one", "two"], frames=2)
    # rows: the photo and two frames of the film, 200 px high + 4 px gaps; columns: input + 2 models
    assert img.shape[0] == 3 * 204 and img.shape[1] == 3 * 400
    assert img[:200, 400:800].std() > 0


def test_variant_letters_each_land_in_their_own_field():
    from training.train_student import parse_variants

    v = parse_variants("w24a0.75d5p0.1k0.3c2t1i,m16a0.5c0.5ig")
    assert [(x["arch"], x["width"], x["alpha"], x["depth"], x["dropout"]) for x in v] == [
        ("unet", 24, 0.75, 5, 0.1),
        ("mobile", 16, 0.5, 4, 0.0),
    ]
    assert [(x["distill"], x["cast"], x["teacher"], x["init"], x["hints"]) for x in v] == [
        (0.3, 2.0, 1, True, False),
        (None, 0.5, 0, True, "gated"),
    ]
    assert parse_variants("m32a1")[0]["cast"] == 0.0
    with pytest.raises(SystemExit, match="bad variant"):
        parse_variants("m16c1a0.5")


def test_cast_loss_measures_the_whole_image_mean_and_pulls_a_cast_prediction_back():
    from training.train_student import cast_loss

    truth = torch.zeros(2, 2, 32, 32)
    truth[0, 0, :, :16] = 40.0  # left half reddish: mean a* 20
    truth[1, 1] = -30.0  # all blue: mean b* -30
    # a prediction on a coarser grid with the right means (different layout) has no cast
    right = torch.zeros(2, 2, 8, 8)
    right[0, 0, :4] = 40.0
    right[1, 1] = -30.0
    assert float(cast_loss(right, truth)) == pytest.approx(0.0, abs=1e-6)
    gray = torch.zeros(2, 2, 8, 8)  # (20 + 30) / 2 photos / 10
    assert float(cast_loss(gray, truth)) == pytest.approx(2.5)
    pred = torch.full((2, 2, 8, 8), 5.0, requires_grad=True)  # a yellow-red cast on both
    opt = torch.optim.SGD([pred], lr=640.0)  # each element's gradient is 1 / (64 * 2 * 10): steps of 0.5
    for _ in range(100):
        opt.zero_grad()
        cast_loss(pred, truth).backward()
        opt.step()
    means = pred.detach().mean(dim=(2, 3))
    torch.testing.assert_close(means, torch.tensor([[20.0, 0.0], [0.0, -30.0]]), atol=1.5, rtol=0)
