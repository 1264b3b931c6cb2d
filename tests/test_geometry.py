"""Picture geometry: the sample aspect ratio (a 16:9 DVD's 32:27 pixels) and the display
rotation reach every output container that can hold them."""

from __future__ import annotations

from fractions import Fraction

import av
import pytest
from media import make_video, read_video

from streamcolor.api import ColorizeConfig, colorize_video

FAST = ColorizeConfig(threads=2, temporal="off")


@pytest.mark.parametrize("sar", [Fraction(32, 27), Fraction(8, 9)])
@pytest.mark.parametrize("suffix", [".mp4", ".mov", ".mkv", ".avi", ".ts", ".flv", ".m4v"])
def test_sample_aspect_ratio_is_kept(sar, suffix, tmp_path, colorizer):
    src = make_video(tmp_path / "dvd.mkv", width=72, height=48, frames=4, sar=sar, audio=False)
    out = tmp_path / f"out{suffix}"
    colorize_video(src, out, FAST, colorizer=colorizer)
    with av.open(str(out)) as c:
        v = c.streams.video[0]
        assert v.sample_aspect_ratio == sar
        assert v.display_aspect_ratio == Fraction(72, 48) * sar


@pytest.mark.parametrize("suffix", [".webm", ".gif"])
def test_where_it_cannot_be_kept_a_warning_says_so(suffix, tmp_path, colorizer):
    src = make_video(tmp_path / "dvd.mkv", width=72, height=48, frames=3, sar=Fraction(32, 27), audio=False)
    warnings: list[str] = []
    colorize_video(src, tmp_path / f"o{suffix}", FAST, colorizer=colorizer, warn=warnings.append)
    assert any("pixel aspect ratio 32/27 cannot be kept" in w for w in warnings), warnings


def test_square_pixels_stay_square(tmp_path, colorizer):
    src = make_video(tmp_path / "sq.mp4", width=64, height=48, frames=3, audio=False)
    colorize_video(src, tmp_path / "o.mkv", FAST, colorizer=colorizer)
    with av.open(str(tmp_path / "o.mkv")) as c:
        assert c.streams.video[0].sample_aspect_ratio in (None, Fraction(1, 1))


@pytest.mark.parametrize("suffix", [".mp4", ".mov", ".mkv"])
def test_rotation_is_kept(suffix, tmp_path, colorizer):
    src = make_video(tmp_path / "rot.mp4", frames=3, rotation=90, audio=False)
    colorize_video(src, tmp_path / f"o{suffix}", FAST, colorizer=colorizer)
    assert read_video(tmp_path / f"o{suffix}")["rotation"] == 90
