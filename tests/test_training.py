"""Training on the CPU with tiny generated images: each trainer learns (its loss goes down),
checkpoints round-trip and resume, torchrun with 2 gloo processes, distillation, export
parity, and the perceptual loss refusing to run without real VGG16 weights."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from media import scene

torch = pytest.importorskip("torch", reason="training needs PyTorch (pip install torch)")
pytest.importorskip("onnx", reason="export needs the onnx package")

from streamcolor import color  # noqa: E402
from training import train_teacher  # noqa: E402
from training.datasets import ColorCrops  # noqa: E402
from training.losses import VGGPerceptual, lab_to_rgb_torch  # noqa: E402
from training.teachers import AB_SCALE, FusionNet, PatchDiscriminator, UNetGenerator, load_teacher  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """16 small colour photos (sky, grass, a red box) as PNG files."""
    d = tmp_path_factory.mktemp("photos")
    for i in range(16):
        cv2.imwrite(str(d / f"p{i:02d}.png"), scene(40, 40, 5 * i)[..., ::-1])
    return d


def tiny(photos: Path, out: Path, *sets: str, config: str = "pix2pix.toml", resume: bool = False) -> dict:
    base = [
        f'data.images="{photos}"',
        "data.crop=32",
        "data.workers=0",
        "train.batch=4",
        "train.log_every=10",
        "train.ckpt_every=20",
        "train.lr=1e-3",
    ]
    if config == "pix2pix.toml":
        base += ["model.depth=4", "model.ngf=8"]
    args = ["--config", str(ROOT / "training" / "configs" / config), "--out", str(out)]
    for s in (*base, *sets):
        args += ["--set", s]
    return train_teacher.main(args + (["--resume"] if resume else []))


def logged(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]


def test_pix2pix_trainer_learns(photos, tmp_path):
    tiny(photos, tmp_path / "run", "train.steps=60")
    log = logged(tmp_path / "run")
    assert [r["step"] for r in log] == [10, 20, 30, 40, 50, 60]
    assert log[-1]["l1_ab"] < 0.8 * log[0]["l1_ab"]  # a*b* error in CIE units goes down
    assert {"d", "g_adv", "images_per_s", "val_l1_ab"} <= set(log[-1])


def test_fusion_trainer_learns(photos, tmp_path):
    out = tmp_path / "fusion"
    sets = ['model.backbone="tiny"', "model.pretrained=false", "train.steps=60"]
    tiny(photos, out, *sets, config="fusion.toml")
    log = logged(out)
    assert log[-1]["l2"] < 0.8 * log[0]["l2"]
    assert "d" not in log[-1]  # the fusion network trains without a discriminator


def test_checkpoint_round_trip_and_resume(photos, tmp_path):
    out = tmp_path / "run"
    tiny(photos, out, "train.steps=20")
    ck = torch.load(out / "last.pt", weights_only=False)
    assert ck["step"] == 20 and ck["config"]["model"]["depth"] == 4
    gen = load_teacher(out / "last.pt", log=lambda m: None)
    for k, v in gen.state_dict().items():
        assert torch.equal(v, ck["generator"][k])
    tiny(photos, out, "train.steps=30", resume=True)
    assert [r["step"] for r in logged(out)] == [10, 20, 30]  # continued, not restarted
    assert torch.load(out / "last.pt", weights_only=False)["step"] == 30


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_torchrun_two_gloo_processes(photos, tmp_path):
    out = tmp_path / "ddp"
    config = str(ROOT / "training/configs/pix2pix.toml")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(free_port()),
           "-m", "training.train_teacher", "--config", config, "--out", str(out)]  # fmt: skip
    for s in (f'data.images="{photos}"', "data.crop=32", "data.workers=0", "model.depth=4", "model.ngf=8",
              "train.batch=2", "train.steps=10", "train.log_every=5", "train.ckpt_every=10"):  # fmt: skip
        cmd += ["--set", s]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env, cwd=ROOT)
    # the ranks' own errors come before torchrun's summary: show them
    errors = [line for line in r.stderr.splitlines() if "[rank" in line or "rror" in line]
    assert r.returncode == 0, "\n".join(errors)[-4000:]
    assert "2 process(es)" in r.stdout
    assert [x["step"] for x in logged(out)] == [5, 10]  # one log: only rank 0 writes
    assert torch.load(out / "last.pt", weights_only=False)["step"] == 10


def test_distillation_and_teacher_export(photos, tmp_path):
    from training import export, pack, train_student

    run = tmp_path / "teacher"
    tiny(photos, run, "train.steps=10")
    packed = tmp_path / "p.npz"
    pack.main(["--data", str(photos), "--out", str(packed), "--size", "40"])
    students = tmp_path / "students"
    train_student.main(
        ["--pack", str(packed), "--out", str(students), "--minutes", "0.05", "--variants", "w8a0.5,w8a0.5k0.2t1,w8a1k0",
         "--batch", "4", "--crop", "32", "--teacher", str(run / "last.pt"), str(run / "last.pt"),
         "--distill", "0.5", "--device", "cpu"]
    )  # fmt: skip
    st = torch.load(students / "student_w8a0.5.pt", weights_only=False)
    assert st["distilled_from"].endswith("last.pt") and st["distill_weight"] == 0.5
    assert torch.load(students / "student_w8a0.5k0.2t1.pt", weights_only=False)["distill_weight"] == 0.2
    assert torch.load(students / "student_w8a1k0.pt", weights_only=False)["distilled_from"] is None
    with pytest.raises(SystemExit, match="teacher 2"):
        train_student.main(["--pack", str(packed), "--variants", "w8a0.5k0.3t2", "--teacher", str(run / "last.pt")])
    onnx_path = tmp_path / "teacher.onnx"
    export.main([str(run / "last.pt"), "--out", str(onnx_path)])
    card = json.loads(onnx_path.with_suffix(".json").read_text())
    assert card["export"]["max_abs_diff_vs_torch"] < 1e-4
    assert card["output"]["stride"] == 1 and card["output"]["ab_scale"] == AB_SCALE
    from typer.testing import CliRunner

    from streamcolor.cli import app

    img = tmp_path / "in.png"
    cv2.imwrite(str(img), scene(48, 64, 3)[..., ::-1])
    r = CliRunner().invoke(app, ["image", str(img), str(tmp_path / "out.png"), "--model", str(onnx_path)])
    assert r.exit_code == 0, r.output
    assert cv2.imread(str(tmp_path / "out.png")).shape == (48, 64, 3)


def test_generators_shapes():
    x = torch.zeros(2, 1, 64, 64)
    assert UNetGenerator(ngf=8, depth=6, log=lambda m: None)(x).shape == (2, 2, 64, 64)
    assert UNetGenerator(ngf=8, depth=8, log=lambda m: None)(torch.zeros(1, 1, 256, 256)).shape == (1, 2, 256, 256)
    assert FusionNet("tiny", log=lambda m: None)(x).shape == (2, 2, 64, 64)
    d = PatchDiscriminator(ndf=8)(torch.zeros(1, 1, 256, 256), torch.zeros(1, 2, 256, 256))
    assert d.shape == (1, 1, 30, 30)  # 70x70 receptive fields on a 256 image


def test_full_size_pix2pix_generator_has_the_papers_size():
    g = UNetGenerator(log=lambda m: None)  # 8 downsamplings, 64 filters
    n = sum(p.numel() for p in g.parameters())
    assert 54e6 < n < 55e6  # Isola et al.'s U-Net generator: ~54.4 M parameters (1-in, 2-out)


def test_perceptual_loss_never_runs_on_random_weights(tmp_path):
    with pytest.raises(SystemExit) as e:
        VGGPerceptual(tmp_path / "missing.pth", log=lambda m: None)
    msg = str(e.value)
    assert "perceptual" in msg and ("torchvision" in msg or "not found" in msg)


def test_lab_to_rgb_matches_the_runtime():
    rng = np.random.default_rng(0)
    lab = np.stack([rng.uniform(0, 100, 500), rng.uniform(-80, 80, 500), rng.uniform(-80, 80, 500)], -1)
    ref = color.lab_to_rgb(lab.astype(np.float32))
    got = lab_to_rgb_torch(torch.from_numpy(lab.T.astype(np.float32))[None, :, :, None])[0, :, :, 0].T.numpy()
    assert np.abs(got - ref).max() < 1e-4


def test_near_gray_photos_are_skipped():
    colour = scene(32, 32, 1)
    gray = np.repeat(color.rgb8_to_gray8(colour)[..., None], 3, axis=2)
    ds = ColorCrops([gray, colour], ["gray.png", "colour.png"], crop=32, train=True, min_chroma=3.0)
    _, ab = ds[0]  # asks for the gray photo, gets a colourful one
    assert float(ab.abs().mean()) * AB_SCALE > 3.0


def test_config_overrides_and_unknown_sections():
    cfg = train_teacher.load_config(ROOT / "training/configs/pix2pix.toml", ["train.steps=7", 'loss.gan="lsgan"'])
    assert cfg["train"]["steps"] == 7 and cfg["loss"]["gan"] == "lsgan" and cfg["model"]["depth"] == 8
    with pytest.raises(SystemExit, match="unknown config"):
        train_teacher.load_config(None, ["optimiser.lr=1"])


def test_wise_interpolates_two_students_and_refuses_mismatches(tmp_path):
    from training import wise
    from training.student import StudentUNet, ab_bins

    bins = ab_bins()[:40]

    def ckpt(seed: int, width: int = 8) -> Path:
        torch.manual_seed(seed)
        m = StudentUNet(bins, width=width, depth=4)
        path = tmp_path / f"s{seed}w{width}.pt"
        torch.save({"state_dict": m.state_dict(), "width": width, "depth": 4, "bins": bins, "alpha": 0.5}, path)
        return path

    a, b = ckpt(0), ckpt(1)
    wise.main([str(a), str(b), "--lam", "0.25", "--out", str(tmp_path / "c.pt")])
    sa, sb = (torch.load(p, weights_only=False)["state_dict"] for p in (a, b))
    c = torch.load(tmp_path / "c.pt", weights_only=False)
    for k, v in c["state_dict"].items():
        if v.is_floating_point():
            assert torch.allclose(v, 0.75 * sa[k] + 0.25 * sb[k], atol=1e-6), k
    assert c["wise"] == {"a": a.name, "b": b.name, "lam": 0.25}
    StudentUNet(bins, width=8, depth=4).load_state_dict(c["state_dict"])  # still a student
    with pytest.raises(SystemExit, match="width"):
        wise.main([str(a), str(ckpt(2, width=16)), "--lam", "0.5", "--out", str(tmp_path / "d.pt")])
    with pytest.raises(SystemExit, match="lam"):
        wise.main([str(a), str(b), "--lam", "1.5", "--out", str(tmp_path / "d.pt")])


@pytest.mark.parametrize("name", ["student.onnx", "student_hints.onnx"])
def test_a_shipped_model_comes_back_from_onnx_into_pytorch(name):
    """training/onnx_import.py: the shipped ONNX file as a trainable MobileStudent gives the
    ONNX Runtime outputs (a hint from a random place too) to float precision."""
    import onnxruntime as ort

    from training.onnx_import import mobile_student_from_onnx

    path = Path(__file__).parents[1] / "streamcolor" / "models" / name
    model = mobile_student_from_onnx(path)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, (2, 1, 96, 128)).astype(np.float32)
    feed = {"l": x}
    args = [torch.from_numpy(x)]
    if model.hints:
        h = np.zeros((2, 3, 96, 128), np.float32)
        y, xx = rng.integers(0, 90), rng.integers(0, 120)
        h[0, :, y : y + 4, xx : xx + 4] = np.float32([0.5, -0.4, 1.0])[:, None, None]
        if model.locality:  # the fourth plane: where the hints may change the picture
            reach = cv2.resize(rng.random((7, 9)).astype(np.float32), (128, 96))
            h = np.concatenate([h, np.repeat(reach[None, None], 2, 0)], axis=1)
        feed["hints"] = h
        args.append(torch.from_numpy(h))
    want = sess.run(None, feed)[0]
    with torch.no_grad():
        got = model(*args).numpy()
    assert np.abs(want).mean() > 1.0  # colour, not zeros
    assert np.abs(got - want).max() < 1e-3
    assert any(p.requires_grad for p in model.parameters())


def test_segment_hints_repaint_one_object_and_hint_only_inside_it():
    """train_student.segment_hints: the target a*b* changes on one flood-filled region (the
    object a click means) and nowhere else, and every hint lies inside it in its new colour."""
    from torch.nn import functional as F

    from training.data import rgb_to_lab_torch
    from training.train_student import grow_segment, segment_hints, simulate_hints

    # two objects on a background: a red disc and a blue bar, on gray (RGB in [0, 1])
    n, s = 6, 64
    yy, xx = torch.meshgrid(torch.arange(s), torch.arange(s), indexing="ij")
    rgb = torch.full((n, 3, s, s), 0.5)
    disc = ((yy - 20) ** 2 + (xx - 20) ** 2) < 100
    bar = (yy > 40) & (xx > 8) & (xx < 56)
    rgb[:, :, disc] = torch.tensor([0.8, 0.1, 0.1])[:, None]
    rgb[:, :, bar] = torch.tensor([0.1, 0.2, 0.8])[:, None]
    lab = rgb_to_lab_torch(rgb)
    ab = F.avg_pool2d(lab[:, 1:], 4)
    lab4 = F.avg_pool2d(lab, 4)
    region = grow_segment(lab4[:1], torch.tensor([[5, 5]]), torch.tensor([10.0]))[0]
    disc4 = F.avg_pool2d(disc[None, None].float(), 4)[0, 0]
    assert region[disc4 == 1].all() and not region[disc4 == 0].any()  # the disc, whole and alone

    gen = torch.Generator().manual_seed(0)
    hints = simulate_hints(lab[:, 1:], gen, p_none=0.0)
    new_hints, new_ab, unchanged = segment_hints(lab, ab, hints, gen, p=1.0)
    scene_ab = torch.unique(ab.round().flatten(2).permute(0, 2, 1).reshape(-1, 2), dim=0)
    checked = 0
    for i in range(n):
        changed = (new_ab[i] - ab[i]).abs().amax(0) > 1e-3
        assert not (changed & unchanged[i]).any()  # the model's own picture is the target only off the object
        if not changed.any() or (torch.cdist(new_ab[i][:, changed][:, :1].T, scene_ab) < 2.0).any():
            continue  # painted in one of the scene's own colours: hints cannot be told apart
        checked += 1
        # one colour on the changed cells, which are one of the scene's regions
        colour = new_ab[i][:, changed]
        assert torch.allclose(colour, colour[:, :1].expand_as(colour), atol=1e-4)
        marked = new_hints[i, 2] > 0
        assert marked.any()
        inside = F.interpolate(changed[None, None].float(), size=(s, s), mode="nearest")[0, 0] > 0
        painted = (new_hints[i, :2] * 110.0 - colour[:, :1, None]).abs().amax(0) < 1e-3
        # each hint of the object's colour lies inside it; truth hints (kept or not) lie outside
        assert (marked & painted & ~inside).sum() == 0 and (marked & painted).any()
        assert (marked & ~painted & inside).sum() == 0
    assert checked >= 2
