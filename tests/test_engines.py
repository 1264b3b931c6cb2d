"""GPU engines: the PyTorch backend and GPU-resident frames checked on the CPU against ONNX
Runtime, the engine cache's keys and refusals, backend choice, and (marked, skipped here)
the same checks on a CUDA GPU and with TensorRT."""

from __future__ import annotations

import json

import numpy as np
import pytest
from media import make_video, read_video, scene
from test_video import chroma_strength
from typer.testing import CliRunner

from streamcolor import color
from streamcolor.api import ColorizeConfig, colorize_video, make_colorizer
from streamcolor.cli import app
from streamcolor.colorizer import Colorizer
from streamcolor.engines.cache import EngineSpec, check_engine, list_engines, read_spec, write_engine
from streamcolor.engines.onnx_engine import OnnxEngine
from streamcolor.engines.registry import create_engine, pick_auto
from streamcolor.errors import ConfigError, NotAvailableError
from streamcolor.model import DEFAULT_MODEL, load_card
from streamcolor.probe import nvdec_name, nvidia_driver_present
from streamcolor.source import VideoSource

torch = pytest.importorskip("torch", reason="the PyTorch backend's tests need torch (pip install torch)")
pytest.importorskip("onnx", reason="the PyTorch backend reads the ONNX graph with the onnx package")

from streamcolor.engines.onnx_torch import OnnxModule  # noqa: E402
from streamcolor.engines.torch_engine import TorchEngine  # noqa: E402
from streamcolor.gpu_colorizer import TorchColorizer  # noqa: E402

CARD = load_card(DEFAULT_MODEL)
# FP16 bound, stated in the README: max |FP16 - FP32| <= 5% of the largest |FP32| output
# value on the same input (measured 2.8% on the CPU, 1.3% on an H200).
FP16_REL_BOUND = 0.05
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU on this machine")


def network_inputs(n: int = 2, h: int = 192, w: int = 256) -> np.ndarray:
    """Real pictures' L (not noise), normalised as the card says."""
    out = []
    for t in range(n):
        gray = color.rgb8_to_gray8(scene(h, w, 7 * t))
        out.append(((color.luma_lut(True)[gray] - CARD.l_offset) / CARD.l_scale)[None])
    return np.stack(out).astype(np.float32)


def rel_error(a: np.ndarray, ref: np.ndarray) -> float:
    return float(np.abs(a - ref).max() / np.abs(ref).max())


def test_torch_module_matches_onnxruntime_fp32():
    x = network_inputs()
    ref = OnnxEngine(CARD, 2).run(x)
    out = TorchEngine(CARD, 2, precision="fp32", device="cpu").run(x)
    assert out.shape == ref.shape
    assert rel_error(out, ref) < 1e-5


def test_compiled_module_matches_eager():
    x = network_inputs(1, 64, 96)
    eager = TorchEngine(CARD, 2, precision="fp32", device="cpu", compile=False).run(x)
    compiled = TorchEngine(CARD, 2, precision="fp32", device="cpu", compile=True).run(x)
    assert rel_error(compiled, eager) < 1e-4


def test_compiled_engine_pads_a_short_batch_instead_of_compiling_again():
    eng = TorchEngine(CARD, precision="fp32", device="cpu", compile=True)
    x = network_inputs(4)
    full = eng.run(x)
    compiled_calls = []
    real = eng.fn
    eng.fn = lambda t: compiled_calls.append(tuple(t.shape)) or real(t)
    short = eng.run(x[:3])
    assert compiled_calls == [(4, *x.shape[1:])]  # padded to the batch already compiled
    assert short.shape[0] == 3 and np.abs(short - full[:3]).max() < 1e-5


def test_fp16_stays_within_the_stated_bound_on_cpu():
    x = network_inputs()
    ref = TorchEngine(CARD, 2, precision="fp32", device="cpu").run(x)
    half = TorchEngine(CARD, 2, precision="fp16", device="cpu").run(x)
    assert np.isfinite(half).all()
    assert rel_error(half, ref) <= FP16_REL_BOUND


def test_unsupported_onnx_op_is_named(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    node = helper.make_node("HardSwish", ["l"], ["ab"])
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("l", TensorProto.FLOAT, [1, 1, 8, 8])],
        [helper.make_tensor_value_info("ab", TensorProto.FLOAT, [1, 1, 8, 8])],
    )
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph), str(path))
    with pytest.raises(NotAvailableError, match="HardSwish"):
        OnnxModule(path)


@pytest.fixture(scope="module")
def gpu_path_on_cpu() -> TorchColorizer:
    """The GPU-resident colorizer, run on the CPU device so its arithmetic can be checked here."""
    return TorchColorizer(TorchEngine(CARD, 2, precision="fp32", device="cpu"), CARD)


@pytest.mark.parametrize("full_range", [True, False])
def test_gpu_frames_match_the_cpu_colorizer(gpu_path_on_cpu, colorizer, full_range):
    y8 = color.rgb8_to_gray8(scene(240, 426, 3))
    cpu = colorizer
    x_cpu, x_gpu = cpu.network_input(y8, full_range), gpu_path_on_cpu.network_input(y8, full_range)
    assert np.array_equal(x_cpu, x_gpu.numpy())  # the same resize and table: the same input, exactly
    ab = cpu.predict([x_cpu])[0]
    assert np.abs(gpu_path_on_cpu.predict([x_gpu])[0] - ab).max() < 1e-3
    grid = ab.shape[:2]
    guide_cpu = cpu.guide_lo(y8, grid, full_range)
    assert np.abs(gpu_path_on_cpu.guide_lo(y8, grid, full_range) - guide_cpu).max() < 0.05
    shape = (120, 213)
    u_c, v_c = cpu.chroma_planes(y8, ab, shape, full_range, "bt709", guide_cpu)
    u_g, v_g = gpu_path_on_cpu.chroma_planes(y8, ab, shape, full_range, "bt709", guide_cpu)
    for c, g in ((u_c, u_g), (v_c, v_g)):
        d = np.abs(c.astype(int) - g)
        assert d.max() <= 2 and d.mean() < 0.2  # rounding-level differences only


def test_gpu_frames_give_deep_chroma_like_the_cpu(gpu_path_on_cpu, colorizer):
    """A deep output (issue 23) with a GPU engine: the chroma at the output's depth as the CPU
    colorizer rounds it, and the same colour as the 8-bit planes scaled."""
    y8 = color.rgb8_to_gray8(scene(240, 426, 3))
    ab = colorizer.predict([colorizer.network_input(y8, False)])[0]
    shape = (120, 213)
    cpu = colorizer.chroma_planes(y8, ab, shape, False, "bt709", depth=10)
    gpu = gpu_path_on_cpu.chroma_planes(y8, ab, shape, False, "bt709", depth=10)
    eight = colorizer.chroma_planes(y8, ab, shape, False, "bt709")
    for c, g, e in zip(cpu, gpu, eight):
        assert c.dtype == g.dtype == np.uint16
        assert np.abs(c.astype(int) - g).max() <= 8  # the guide computed on the device
        assert np.abs(c.astype(int) - 4 * e.astype(int)).max() <= 3  # 8-bit's colour, finer steps


def test_luma_is_uploaded_once_per_frame(gpu_path_on_cpu, monkeypatch):
    y8 = color.rgb8_to_gray8(scene(120, 160, 1))
    calls = []
    real = torch.from_numpy
    monkeypatch.setattr(torch, "from_numpy", lambda a: calls.append(a.shape) or real(a))
    gpu_path_on_cpu.network_input(y8, True)
    gpu_path_on_cpu.guide_lo(y8, (12, 16), True)
    gpu_path_on_cpu.chroma_planes(y8, np.zeros((12, 16, 2), np.float32), (60, 80), True, "bt709")
    assert calls.count((120, 160)) == 1


def test_video_through_the_gpu_path_keeps_luma_and_colours(tmp_path, gpu_path_on_cpu):
    clip = make_video(tmp_path / "in.mp4", width=96, height=64, frames=10)
    out = tmp_path / "out.mp4"
    from streamcolor.output_plan import EncodeOptions

    summary = colorize_video(clip, out, ColorizeConfig(encode=EncodeOptions(crf=0)), colorizer=gpu_path_on_cpu)
    assert summary.frames == 10 and summary.backend.startswith("torch (cpu:fp32")
    got, src = read_video(out), read_video(clip)
    assert all(np.array_equal(a, b) for a, b in zip(got["luma"], src["luma"]))
    assert np.mean([chroma_strength(f) for f in got["rgb"]]) > 3.0


# --- choosing and refusing backends ----------------------------------------------------------


def test_auto_says_what_it_picked_and_gpu_backends_refuse_cleanly():
    engine = create_engine("auto", CARD, 2)
    assert engine.name == pick_auto()
    if not torch.cuda.is_available():
        assert engine.name == "onnx"
        with pytest.raises(NotAvailableError, match="NVIDIA GPU"):
            create_engine("torch", CARD, 2)
    with pytest.raises(ConfigError, match="FP32"):
        create_engine("onnx", CARD, 2, precision="fp16")
    with pytest.raises(ConfigError, match="unknown backend"):
        create_engine("directml", CARD, 2)
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        with pytest.raises(NotAvailableError, match=r"streamcolor\[tensorrt\]"):
            create_engine("tensorrt", CARD, 2)


def test_cli_names_the_backend_and_refuses_unavailable_ones(tmp_path, vfr_clip):
    runner = CliRunner()
    r = runner.invoke(app, ["video", str(vfr_clip), str(tmp_path / "o.mp4"), "--threads", "2"])
    assert r.exit_code == 0 and f"{pick_auto()} (" in r.output
    if not torch.cuda.is_available():
        r = runner.invoke(app, ["video", str(vfr_clip), str(tmp_path / "o2.mp4"), "--backend", "torch"])
        assert r.exit_code == 2 and "NVIDIA GPU" in r.output and not (tmp_path / "o2.mp4").exists()


# --- the engine cache --------------------------------------------------------------------------


def spec(**kw) -> EngineSpec:
    base = dict(
        model_name="student",
        model_sha256="ab" * 32,
        input_hw=(192, 352),
        batch=4,
        precision="fp16",
        gpu="NVIDIA H100 80GB HBM3",
        compute_capability="9.0",
        trt_version="10.9.0",
    )
    return EngineSpec(**{**base, **kw})


def test_engine_key_is_deterministic_and_covers_every_field():
    assert spec().key == spec().key and spec().filename == spec().filename
    changed = [
        spec(model_sha256="cd" * 32),
        spec(input_hw=(192, 256)),
        spec(batch=8),
        spec(precision="fp32"),
        spec(gpu="NVIDIA A100-SXM4-80GB"),
        spec(compute_capability="8.0"),
        spec(trt_version="10.10.0"),
    ]
    assert len({s.key for s in changed} | {spec().key}) == len(changed) + 1


def test_engine_cache_round_trip_and_foreign_engine_refused_with_rebuild_command(tmp_path):
    plan = write_engine(tmp_path, spec(), b"not a real plan")
    assert read_spec(plan) == spec() and plan.read_bytes() == b"not a real plan"
    assert [p for p, _ in list_engines(tmp_path)] == [plan]
    check_engine(plan, spec(), DEFAULT_MODEL)  # matches: accepted
    with pytest.raises(ConfigError) as e:
        check_engine(plan, spec(gpu="NVIDIA A100-SXM4-80GB", compute_capability="8.0"), DEFAULT_MODEL)
    msg = str(e.value)
    assert "gpu: NVIDIA H100 80GB HBM3 (engine) vs NVIDIA A100-SXM4-80GB (here)" in msg
    assert f"streamcolor engines build --model {DEFAULT_MODEL} --precision fp16 --batch 4 --input-size 352x192" in msg
    plan.with_suffix(".json").write_text("{broken")
    with pytest.raises(ConfigError, match="rebuild"):
        check_engine(plan, spec(), DEFAULT_MODEL)


def test_engines_cli_lists_and_flags_stale(tmp_path):
    from streamcolor.engines.cache import weights_sha256

    write_engine(tmp_path, spec(model_sha256=weights_sha256(DEFAULT_MODEL)), b"x")
    write_engine(tmp_path, spec(batch=8), b"x")  # its model hash is not the shipped model's
    r = CliRunner().invoke(app, ["engines", "list", "--dir", str(tmp_path)])
    assert r.exit_code == 0
    lines = r.output.splitlines()
    assert lines[0].endswith(": 2") and sum("STALE" in ln for ln in lines) == 1
    assert json.loads((tmp_path / spec(batch=8).filename).with_suffix(".json").read_text())["batch"] == 8
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        r = CliRunner().invoke(app, ["engines", "build", "--dir", str(tmp_path)])
        assert r.exit_code == 2 and "TensorRT" in r.output


def test_nvdec_is_used_only_where_it_exists(vfr_clip):
    with VideoSource(vfr_clip, hw_decode=True) as src:
        if not nvidia_driver_present():
            assert src.decoder is None and src.decoder_name == "h264"  # CPU decoding, silently fine
        frames = [i for i in src.items() if hasattr(i, "y8")]
    assert len(frames) == 15
    assert nvdec_name("h264") in (None, "h264_cuvid")


# --- on a CUDA GPU (skipped here) -------------------------------------------------------------


@pytest.mark.gpu
@needs_cuda
@pytest.mark.parametrize("compiled", [False, True])
def test_cuda_fp16_within_bound_of_fp32(compiled):
    x = network_inputs(8)
    ref = OnnxEngine(CARD, 2).run(x)
    half = TorchEngine(CARD, precision="fp16", device="cuda", compile=compiled).run(x)
    assert rel_error(half, ref) <= FP16_REL_BOUND


@pytest.mark.gpu
@needs_cuda
def test_cuda_default_engine_colorizes_a_video_in_the_threaded_pipeline(tmp_path):
    """The default GPU engine (compiled FP16) inside the pipeline's threads, with a short
    last batch: once failed on an H200 while capturing a CUDA graph."""
    clip = make_video(tmp_path / "in.mp4", width=320, height=180, frames=11)
    out = tmp_path / "out.mp4"
    from streamcolor.output_plan import EncodeOptions

    cfg = ColorizeConfig(backend="torch", batch=4, encode=EncodeOptions(crf=0))
    summary = colorize_video(clip, out, cfg)
    assert summary.frames == 11 and "compiled" in summary.backend
    got, src = read_video(out), read_video(clip)
    assert all(np.array_equal(a, b) for a, b in zip(got["luma"], src["luma"]))
    assert np.mean([chroma_strength(f) for f in got["rgb"]]) > 3.0


@pytest.mark.gpu
@needs_cuda
def test_cuda_gpu_frames_match_the_cpu_colorizer(colorizer):
    gpu = make_colorizer(ColorizeConfig(backend="torch", precision="fp32"))
    y8 = color.rgb8_to_gray8(scene(480, 854, 5))
    ab = colorizer.predict([colorizer.network_input(y8, False)])[0]
    u_c, v_c = colorizer.chroma_planes(y8, ab, (240, 427), False, "bt709")
    u_g, v_g = gpu.chroma_planes(y8, ab, (240, 427), False, "bt709")
    assert np.abs(u_c.astype(int) - u_g).max() <= 2 and np.abs(v_c.astype(int) - v_g).max() <= 2


@pytest.mark.gpu
@needs_cuda
def test_tensorrt_engine_fp16_within_bound_and_cached(tmp_path):
    pytest.importorskip("tensorrt", reason="TensorRT is not installed")
    from streamcolor.engines.tensorrt_engine import TensorRTEngine

    x = network_inputs(4)
    ref = OnnxEngine(CARD, 2).run(x)
    engine = TensorRTEngine(CARD, precision="fp16", batch=4, engine_dir=tmp_path, log=lambda m: None)
    assert rel_error(engine.run(x), ref) <= FP16_REL_BOUND
    assert len(list_engines(tmp_path)) == 1
    again = TensorRTEngine(CARD, precision="fp16", batch=4, engine_dir=tmp_path, build_missing=False)
    assert rel_error(again.run(x), ref) <= FP16_REL_BOUND  # loaded from the cache, not rebuilt


def test_the_colorizer_fixture_is_the_cpu_one(colorizer):
    assert type(colorizer) is Colorizer and colorizer.engine.name == "onnx"
