"""Which video stream is colorized: FFmpeg's best stream, never cover art or a thumbnail;
--stream N overrides; a file with nothing usable is refused in one line."""

from __future__ import annotations

import pytest
from media import make_streams, read_video
from typer.testing import CliRunner

from streamcolor.api import ColorizeConfig, colorize_video
from streamcolor.cli import app
from streamcolor.errors import InputError

MOVIE = {"width": 64, "height": 48, "frames": 8}
COVER = {"width": 96, "height": 96, "frames": 1, "codec": "mjpeg", "disposition": "attached_pic"}
FAST = ColorizeConfig(threads=2, temporal="off")


@pytest.mark.parametrize("suffix", [".mkv", ".nut", ".mp4"])
def test_cover_art_before_the_movie_is_passed_over(suffix, tmp_path, colorizer):
    # Matroska and NUT keep the (larger) cover as stream 0 but lose its flag; MP4 keeps the flag
    src = make_streams(tmp_path / f"in{suffix}", [COVER, MOVIE], audio=True)
    out = tmp_path / "out.mp4"
    summary = colorize_video(src, out, FAST, colorizer=colorizer)
    got = read_video(out)
    assert summary.frames == 8 and len(got["times"]) == 8
    assert (got["width"], got["height"]) == (64, 48)
    assert got["audio_codec"] == "aac"


def test_largest_of_two_movies_and_stream_override(tmp_path, colorizer):
    thumb = {"width": 32, "height": 32, "frames": 8}
    src = make_streams(tmp_path / "two.nut", [thumb, {**MOVIE, "width": 128, "height": 96}])
    colorize_video(src, tmp_path / "big.mp4", FAST, colorizer=colorizer)
    assert read_video(tmp_path / "big.mp4")["width"] == 128
    colorize_video(src, tmp_path / "small.mp4", FAST, colorizer=colorizer, stream=0)
    assert read_video(tmp_path / "small.mp4")["width"] == 32


def test_default_disposition_wins(tmp_path, colorizer):
    src = make_streams(tmp_path / "d.nut", [{**MOVIE, "width": 128}, {**MOVIE, "disposition": "default"}])
    colorize_video(src, tmp_path / "o.mp4", FAST, colorizer=colorizer)
    assert read_video(tmp_path / "o.mp4")["width"] == 64


def test_only_a_cover_picture_is_refused_with_the_way_out(tmp_path, colorizer):
    src = make_streams(tmp_path / "song.mp4", [COVER], audio=True)
    with pytest.raises(InputError, match=r"only a picture \(cover art\): #\d; give --stream N"):
        colorize_video(src, tmp_path / "o.mp4", FAST, colorizer=colorizer)
    assert not (tmp_path / "o.mp4").exists()


@pytest.mark.parametrize("stream, words", [("1", "is audio, not video (video streams: 0)"), ("7", "no stream #7")])
def test_stream_flag_refuses_what_is_not_video(stream, words, tmp_path):
    src = make_streams(tmp_path / "a.mkv", [MOVIE], audio=True)
    r = CliRunner().invoke(app, ["video", str(src), str(tmp_path / "o.mp4"), "--stream", stream])
    assert r.exit_code == 1
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], r.output
