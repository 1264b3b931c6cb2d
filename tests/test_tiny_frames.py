"""Every frame size FFmpeg decodes is colorized, down to 1x1, or refused in one line
before any work when the chosen encoder cannot take it."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from media import make_video, read_video

from streamcolor.api import ColorizeConfig, colorize_video
from streamcolor.errors import OutputError
from streamcolor.images import colorize_images
from streamcolor.output_plan import EncodeOptions

# every case of a side of 1, 2 or 3 (1x1 chroma, the odd 4:4:4 path), through both the plain
# path and the temporal filter's optical flow
CASES = [(1, 1, "off"), (2, 2, "off"), (3, 3, "off"), (2, 64, "off"), (64, 2, "off"), (5, 3, "off")]
CASES += [(1, 1, "bidirectional"), (2, 2, "bidirectional"), (1, 64, "bidirectional"), (7, 9, "bidirectional")]


@pytest.mark.parametrize("width, height, temporal", CASES)
def test_tiny_videos_are_colorized_at_their_size(width, height, temporal, tmp_path, colorizer):
    src = make_video(tmp_path / "tiny.nut", width=width, height=height, frames=5, codec="rawvideo", audio=False)
    out = tmp_path / "out.mp4"
    cfg = ColorizeConfig(threads=2, temporal=temporal, encode=EncodeOptions(crf=0))
    summary = colorize_video(src, out, cfg, colorizer=colorizer, warn=lambda m: None)
    got = read_video(out)
    assert summary.frames == 5 and len(got["times"]) == 5
    assert (got["width"], got["height"]) == (width, height)
    assert all(luma.shape == (height, width) for luma in got["luma"])


@pytest.mark.parametrize("codec, size", [("hevc", (2, 2)), ("ffv1", (3, 3)), ("hevc", (64, 2))])
def test_an_encoder_that_cannot_take_the_size_is_refused_before_work(codec, size, tmp_path, colorizer):
    src = make_video(tmp_path / "tiny.nut", width=size[0], height=size[1], frames=3, codec="rawvideo", audio=False)
    warnings: list[str] = []
    suffix = ".mkv" if codec == "ffv1" else ".mp4"
    cfg = ColorizeConfig(threads=2, encode=EncodeOptions(codec=codec))
    with pytest.raises(OutputError, match=rf"cannot encode {size[0]}x{size[1]} frames .*; try --codec h264") as e:
        colorize_video(src, tmp_path / f"o{suffix}", cfg, colorizer=colorizer, warn=warnings.append)
    assert "\n" not in str(e.value)
    assert warnings == [] and sorted(p.name for p in tmp_path.iterdir()) == ["tiny.nut"]


@pytest.mark.parametrize("width, height", [(1, 1), (2, 2), (3, 1), (1, 5)])
def test_tiny_photos_are_colorized(width, height, tmp_path):
    img = np.full((height, width, 3), 128, np.uint8)
    cv2.imwrite(str(tmp_path / "in.png"), img)
    colorize_images(tmp_path / "in.png", tmp_path / "out.png", ColorizeConfig(threads=2))
    out = cv2.imread(str(tmp_path / "out.png"))
    assert out.shape == (height, width, 3)


def test_a_thin_strip_costs_the_network_no_more_than_a_wide_frame(tmp_path, colorizer):
    """2x2048: the short side scaled to the network's 160 would make the input 160 x 163840."""
    h, w = colorizer.card.input_size(2, 2048)
    assert w <= 4 * colorizer.card.short_side and h >= colorizer.card.multiple
    assert colorizer.card.input_size(1080, 1920) == (160, 288)  # ordinary frames unchanged
    src = make_video(tmp_path / "strip.nut", width=2048, height=2, frames=3, codec="rawvideo", audio=False)
    summary = colorize_video(src, tmp_path / "o.mkv", ColorizeConfig(threads=2, temporal="off"), colorizer=colorizer)
    assert summary.frames == 3 and read_video(tmp_path / "o.mkv")["width"] == 2048
