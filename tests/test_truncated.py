"""A file that ends before the length its container states (Matroska's DURATION tag, the
AVI header, an index) is colorized up to the end with a warning; complete files, and
containers that state no length, give none."""

from __future__ import annotations

import pytest
from media import make_video

from streamcolor.api import ColorizeConfig, colorize_video, early_end

FAST = ColorizeConfig(threads=2, temporal="off")


def cut(path, fraction: float):
    data = path.read_bytes()
    short = path.with_name(f"cut{path.suffix}")
    short.write_bytes(data[: int(len(data) * fraction)])
    return short


@pytest.mark.parametrize("suffix, codec", [(".mkv", "libx264"), (".avi", "mpeg4"), (".mov", "libx264")])
def test_a_file_cut_short_is_reported(suffix, codec, tmp_path, colorizer):
    # MOV/MP4 with its index (moov) first, as streaming-ready files have it: the cut keeps it
    opts = {"movflags": "faststart"} if suffix == ".mov" else None
    full = make_video(tmp_path / f"full{suffix}", width=64, height=48, frames=75, codec=codec, container_options=opts)
    warnings: list[str] = []
    summary = colorize_video(cut(full, 0.6), tmp_path / "out.mp4", FAST, colorizer=colorizer, warn=warnings.append)
    assert 0 < summary.frames < 75
    early = [w for w in warnings if "ended early" in w]
    assert len(early) == 1 and f"{summary.frames} frames" in early[0] and "3.0 s the container states" in early[0]
    assert (tmp_path / "out.mp4").exists()


@pytest.mark.parametrize(
    "suffix, kwargs",
    [(".mkv", {}), (".avi", {"codec": "mpeg4"}), (".ts", {}), (".mp4", {"vfr": True}), (".mov", {"start": 2.0})],
)
def test_complete_files_and_unstated_lengths_give_no_warning(suffix, kwargs, tmp_path, colorizer):
    full = make_video(tmp_path / f"full{suffix}", width=64, height=48, frames=30, **kwargs)
    warnings: list[str] = []
    colorize_video(full, tmp_path / "out.mkv", FAST, colorizer=colorizer, warn=warnings.append)
    assert not [w for w in warnings if "ended early" in w], warnings
    if suffix == ".ts":  # no stated length: a cut TS is not "early" either
        warnings.clear()
        colorize_video(cut(full, 0.5), tmp_path / "o2.mkv", FAST, colorizer=colorizer, warn=warnings.append)
        assert not [w for w in warnings if "ended early" in w], warnings


def test_early_end_rule():
    assert early_end(1.8, 3.0, 25) == "1.8 s of the 3.0 s the container states"
    assert early_end(2.96, 3.0, 25) is None  # within a frame and 5 %
    assert early_end(1.0, None, 25) is None
