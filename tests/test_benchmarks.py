"""Tiny runs of the benchmark scripts so they do not rot (no timing is asserted)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from media import make_video

from benchmarks import recurring_shots, temporal_quality, video_speed


def test_video_speed_tiny(tmp_path):
    clip = make_video(tmp_path / "clip.mp4", width=96, height=64, frames=10)
    out = tmp_path / "result.json"
    from streamcolor.model import DEFAULT_MODEL

    result = video_speed.main(
        ["--clip", str(clip), "--height", "64", "--repeats", "1", "--out", str(out), "--model", str(DEFAULT_MODEL)]
        + [str(DEFAULT_MODEL)]  # two models side by side share one transcode-only baseline
    )
    assert len(result["runs"]) == 2
    assert result["runs"][0]["transcode_only_fps"] == result["runs"][1]["transcode_only_fps"]
    assert result["runs"][0]["model"] == str(DEFAULT_MODEL)
    row = result["runs"][0]
    assert row["frames"] == 10 and row["size"] == [96, 64]
    assert row["streamcolor_fps"] > 0 and row["transcode_only_fps"] > 0
    assert set(row["stage_ms_per_frame"]) == {"decode", "model", "temporal", "upsample", "encode"}
    saved = json.loads(out.read_text())
    assert saved["machine"]["cores"] and saved["runs"][0]["ratio_to_transcode"] == row["ratio_to_transcode"]


def test_temporal_quality_tiny(tmp_path):
    make_video(tmp_path / "clip.mp4", width=96, height=64, frames=8, audio=False)
    out = tmp_path / "t.json"
    result = temporal_quality.main(
        ["--video-dir", str(tmp_path), "--clips", "clip.mp4", "--frames", "8", "--out", str(out)]
    )
    summary = result["summary"]
    assert set(summary) == {"truth", *temporal_quality.MODES}
    assert summary["bidirectional/k2"]["network_share"] < 0.75  # key frames skip the network
    for mode in temporal_quality.MODES:
        assert summary[mode]["warp_error"] >= 0 and 0 <= summary[mode]["cdc"] <= 1
        assert summary[mode]["psnr"] > 5
    assert "warp_error_ab_vs_off" in summary["causal"]
    assert out.exists()


def test_model_speed_tiny(tmp_path):
    from benchmarks import model_speed

    r = model_speed.main(
        [
            "--nets",
            "student",
            "resnet18_unet",
            "zhang2016",
            "--warmup",
            "1",
            "--repeats",
            "2",
            "--budget",
            "0",
            "--spinning",
            "off",
            "on",
            "--out",
            str(tmp_path / "m.json"),
        ]
    )
    nets = r["nets"]
    for tag in ("nospin", "spin"):
        assert nets["student"][f"batch1_{tag}"]["runs"] >= 2 and nets["student"][f"batch4_{tag}"]["input"][0] == 4
        assert nets["resnet18_unet"][f"batch1_{tag}"]["input"] == [1, 1, 256, 256]
        assert nets["resnet18_unet"][f"batch1_{tag}"]["fps"] > 0
        assert nets["student_speedup_vs_zhang2016"][tag]["batch1"] > 1


def test_published_nets_have_their_published_shapes():
    import onnxruntime as ort

    from benchmarks.published_nets import zhang2016

    m = zhang2016()
    n_params = sum(int(np.prod(i.dims)) for i in m.graph.initializer)
    assert 30e6 < n_params < 34e6  # the Caffe model has about 32 M parameters
    s = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    out = s.run(None, {"x": np.zeros((1, 1, 224, 224), np.float32)})[0]
    assert out.shape == (1, 313, 56, 56)


def test_memory_benchmark_tiny(tmp_path):
    from benchmarks import memory

    r = memory.main(["--minutes", "0.02", "--height", "120", "--out", str(tmp_path / "mem.json")])["run"]
    assert r["frames"] == 30 and r["size"] == [214, 120]
    assert 0 < r["peak_rss_mb"] < 4096


def test_live_latency_tiny(tmp_path):
    from benchmarks import live_latency

    clip = make_video(tmp_path / "clip.mp4", width=160, height=120, frames=20, audio=False)
    out = tmp_path / "live.json"
    result = live_latency.main(
        [
            "--clip",
            str(clip),
            "--width",
            "160",
            "--height",
            "120",
            "--fps",
            "25",
            "--seconds",
            "1.5",
            "--warmup",
            "0.5",
            "--threads",
            "2",
            "--out",
            str(out),
        ]
    )
    run = result["runs"][0]
    assert run["frames_out"] > 10 and run["steady_frames"] > 0
    assert set(run["latency_ms"]["total"]) == {"p50_ms", "p99_ms", "max_ms"}
    assert json.loads(out.read_text())["runs"][0]["frames_in"] == run["frames_in"]


def test_gpu_speed_tiny_on_cpu(tmp_path):
    pytest.importorskip("torch", reason="the GPU benchmark needs torch")
    pytest.importorskip("onnx", reason="the torch engine reads the ONNX graph with onnx")
    from benchmarks import gpu_speed

    clip = make_video(tmp_path / "clip.mp4", width=96, height=64, frames=6, audio=False)
    result = gpu_speed.main(
        [
            "--device",
            "cpu",
            "--repeats",
            "2",
            "--heights",
            "64",
            "--clip",
            str(clip),
            "--max-frames",
            "6",
            "--engines",
            "torch_fp32_eager",
            "torch_fp16_eager",
            "--out",
            str(tmp_path / "g.json"),
        ]
    )
    rows = result["model_only"]["engines"]
    assert rows["torch_fp32_eager"]["rel_error_vs_onnx_fp32"] < 1e-4
    assert rows["torch_fp16_eager"]["rel_error_vs_onnx_fp32"] < 0.05
    assert rows["torch_fp16_eager"]["batch8"]["fps"] > 0
    assert result["end_to_end"][0]["frames"] == 6


def test_fusion_network_has_inception_resnet_v2_inside():
    from benchmarks.published_nets import PUBLISHED

    build, (h, w), _ = PUBLISHED["fusion_irv2"]
    m = build()
    params = sum(int(np.prod(t.dims)) for t in m.graph.initializer)
    assert 55e6 < params < 70e6  # Inception-ResNet-v2 alone has 55.8 M parameters
    ops = [n.op_type for n in m.graph.node]
    assert ops.count("Conv") > 240 and "Expand" in ops and "AveragePool" in ops


def test_report_writes_tables_and_plot(tmp_path):
    pytest.importorskip("matplotlib", reason="the plot needs matplotlib")
    from benchmarks import report
    from benchmarks.common import RESULTS

    out = tmp_path / "README.md"
    report.main(["--results", str(RESULTS), "--out", str(out)])
    text = out.read_text()
    assert "| student: streamcolor default" in text and "transcode-only" in text
    png = tmp_path / "results" / "fps_vs_resolution.png"
    import cv2

    img = cv2.imread(str(png))
    assert img is not None and img.shape[0] > 300 and img.std() > 10  # a drawn chart, not a blank


def test_batch_speed_tiny(tmp_path):
    from benchmarks import batch_speed

    clip = make_video(tmp_path / "clip.mp4", width=96, height=64, frames=8)
    out = tmp_path / "b.json"
    r = batch_speed.main(
        ["--clip", str(clip), "--clips", "2", "--frames", "8", "--height", "64", "--repeats", "1"]
        + ["--modes", "loop_api", "batch:1", "--out", str(out)]
    )
    assert r["clips"] == 2 and r["frames"] == 16
    assert set(r["modes"]) == {"loop_api", "batch:1"}
    for row in r["modes"].values():
        assert row["files_per_hour"] > 0 and row["fps"] > 0 and row["x_best_single_loop"] > 0
    assert json.loads(out.read_text())["machine"]["cores"]


def test_sequence_speed_tiny(tmp_path):
    from benchmarks import sequence_speed

    out = tmp_path / "seq.json"
    result = sequence_speed.main(
        ["--width", "96", "--height", "64", "--frames", "4", "--repeats", "1", "--out", str(out)]
    )
    assert result["output"] == "FFV1 yuv420p16le in Matroska (transcode-only: yuv420p16le)"
    assert result["streamcolor_fps"] > 0 and result["transcode_only_fps"] > 0 and result["ratio_to_transcode"] > 0
    assert json.loads(out.read_text())["input"]["size"] == [96, 64]


def test_hint_leak_tiny(tmp_path):
    """The leak benchmark on made-up composited objects: the figures exist and are sane."""
    from benchmarks import hint_leak
    from streamcolor.model import HINTS_MODEL

    out = tmp_path / "leak.json"
    res = hint_leak.main(["--model", str(HINTS_MODEL), "--source", "generated", "--objects", "2", "--out", str(out)])
    for what in ("network", "spread"):
        s = res["summary"][what]
        assert s["objects"] == 2 and s["inside"] > 0 and s["outside"] >= 0
        assert s["leak_of_means"] == pytest.approx(s["outside"] / s["inside"])
    assert set(res["psnr_hints_from_truth"]) == {"0", "1", "2", "5", "10"}
    saved = json.loads(out.read_text())
    assert saved["machine"]["cores"] and len(saved["objects"]) == 2


def test_composite_keeps_the_object():
    from benchmarks.hint_leak import composite

    obj = np.full((8, 8, 3), 200, np.uint8)
    mask = np.zeros((8, 8), bool)
    mask[2:5, 3:6] = True
    out = composite(obj, mask, np.zeros((16, 16, 3), np.uint8))
    assert (out[mask] == 200).all() and (out[~mask] == 0).all()


def test_recurring_shots_tiny(tmp_path):
    for name, width in (("a.mp4", 96), ("b.mp4", 128), ("c.mp4", 160)):
        make_video(tmp_path / name, width=width, height=64, frames=20, audio=False)
    out, sheet = tmp_path / "r.json", tmp_path / "sheet.jpg"
    args = ["--video-dir", str(tmp_path), "--scenarios", "a.mp4,b.mp4,c.mp4", "--shot", "6", "--gaps", "0"]
    result = recurring_shots.main([*args, "--repeats", "1", "--out", str(out), "--sheet", str(sheet)])
    row = result["sets"]["given/gap0"]["scenarios"][0]
    # the three tiny clips show the same generated scene: no cut between them, nothing to recall
    assert row["memory"]["shots"] >= 1 and set(row["returns"]) == {"A->A'", "A'->A''", "B->B'"}
    assert {"without", "with"} <= set(result["speed"]["edit"]["fps"])
    assert json.loads(out.read_text())["machine"]["cores"] and sheet.stat().st_size > 0
