"""Tiny runs of the benchmark scripts so they do not rot (no timing is asserted)."""

from __future__ import annotations

import json

from media import make_video

from benchmarks import video_speed


def test_video_speed_tiny(tmp_path):
    clip = make_video(tmp_path / "clip.mp4", width=96, height=64, frames=10)
    out = tmp_path / "result.json"
    result = video_speed.main(["--clip", str(clip), "--height", "64", "--repeats", "1", "--out", str(out)])
    row = result["runs"][0]
    assert row["frames"] == 10 and row["size"] == [96, 64]
    assert row["streamcolor_fps"] > 0 and row["transcode_only_fps"] > 0
    assert set(row["stage_ms_per_frame"]) == {"decode", "model", "upsample", "encode"}
    saved = json.loads(out.read_text())
    assert saved["machine"]["cores"] and saved["runs"][0]["ratio_to_transcode"] == row["ratio_to_transcode"]
