"""The command line: typer's runner for the commands, one real subprocess for the entry point."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from media import read_video, scene
from typer.testing import CliRunner

from streamcolor.cli import app

runner = CliRunner()


def test_video_command_writes_output_and_summary(vfr_clip, tmp_path):
    out = tmp_path / "out.mp4"
    result = runner.invoke(app, ["video", str(vfr_clip), str(out), "--threads", "2"])
    assert result.exit_code == 0, result.output
    assert "colorized 15 frames" in result.output
    assert len(read_video(out)["times"]) == 15


def test_quiet_prints_nothing(vfr_clip, tmp_path):
    result = runner.invoke(app, ["video", str(vfr_clip), str(tmp_path / "o.mp4"), "--quiet"])
    assert result.exit_code == 0
    assert result.output == ""


@pytest.mark.parametrize(
    "args, words, code",
    [
        (["video", "missing.mp4", "OUT"], "input not found", 1),
        pytest.param(
            ["video", "IN", "OUT", "--backend", "tensorrt"],
            "needs TensorRT",
            2,
            marks=pytest.mark.skipif(
                importlib.util.find_spec("tensorrt") is not None, reason="TensorRT is installed here"
            ),
        ),
        (["video", "IN", "nowhere/out.mp4"], "does not exist", 1),
    ],
)
def test_errors_are_one_line(args, words, code, vfr_clip, tmp_path):
    args = [
        str(vfr_clip)
        if a == "IN"
        else str(tmp_path / "o.mp4")
        if a == "OUT"
        else str(tmp_path / a)
        if a.startswith("nowhere") or a == "missing.mp4"
        else a
        for a in args
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == code, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("streamcolor: ") and words in lines[0], result.output
    assert not (tmp_path / "o.mp4").exists()


def test_image_file_and_folder(tmp_path):
    src = tmp_path / "photos"
    src.mkdir()
    img = scene(64, 96, 0)[..., ::-1]
    cv2.imwrite(str(src / "a.png"), img)
    cv2.imwrite(str(src / "b.jpg"), img)
    (src / "notes.txt").write_text("not an image")
    out = tmp_path / "coloured"
    result = runner.invoke(app, ["image", str(src), str(out)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.jpg"]
    assert (out / "a.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "b.jpg").read_bytes()[:2] == b"\xff\xd8"
    single = tmp_path / "one.png"
    assert runner.invoke(app, ["image", str(src / "a.png"), str(single)]).exit_code == 0
    rgb = cv2.imread(str(single)).astype(np.float32)
    assert np.abs(rgb - rgb.mean(axis=2, keepdims=True)).mean() > 3.0  # coloured


def test_real_subprocess_refuses_bad_flag_in_one_line(vfr_clip, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    cmd = [
        sys.executable,
        "-m",
        "streamcolor",
        "video",
        str(vfr_clip),
        str(tmp_path / "o.mp4"),
        "--temporal",
        "sideways",
    ]
    bad = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1 and "sideways" in bad.stderr
    cmd = [sys.executable, "-m", "streamcolor", "video", str(vfr_clip), str(tmp_path / "o.mp4")]
    ok = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert ok.returncode == 0, ok.stderr
    assert read_video(tmp_path / "o.mp4")["audio_packets"] == read_video(vfr_clip)["audio_packets"]


def test_real_subprocess_not_a_video(tmp_path):
    text = tmp_path / "x.mp4"
    text.write_text("hello")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    r = subprocess.run(
        [sys.executable, "-m", "streamcolor", "video", str(text), str(tmp_path / "o.mp4")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert r.returncode == 1
    assert r.stderr.startswith("streamcolor: cannot open") and len(r.stderr.strip().splitlines()) == 1


def test_bench_prints_model_and_end_to_end_rows():
    result = runner.invoke(app, ["bench", "--frames", "8", "--threads", "2"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "backend onnx" in out and "model only" in out
    for size in ("854x480", "1280x720", "1920x1080"):
        assert size in out
