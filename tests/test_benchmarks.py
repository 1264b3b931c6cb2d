"""Tiny runs of the benchmark scripts so they do not rot (no timing is asserted)."""

from __future__ import annotations

import json

from media import make_video

from benchmarks import temporal_quality, video_speed


def test_video_speed_tiny(tmp_path):
    clip = make_video(tmp_path / "clip.mp4", width=96, height=64, frames=10)
    out = tmp_path / "result.json"
    result = video_speed.main(["--clip", str(clip), "--height", "64", "--repeats", "1", "--out", str(out)])
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
