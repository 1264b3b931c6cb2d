"""A URL whose protocol this FFmpeg lacks (srt:// with PyAV's wheels) is refused in the
README's one line, as input or output, before anything else is printed."""

from __future__ import annotations

import pytest
from media import make_video
from typer.testing import CliRunner

from streamcolor.cli import app
from streamcolor.probe import has_protocol

pytestmark = pytest.mark.skipif(has_protocol("srt://"), reason="this PyAV's FFmpeg has libsrt")


@pytest.mark.parametrize("where", ["in", "out", "video"])
def test_srt_without_libsrt_is_one_line(where, tmp_path):
    clip = str(make_video(tmp_path / "in.mp4", frames=3, audio=False))
    url = "srt://127.0.0.1:9000"
    args = {
        "in": ["stream", url, "udp://127.0.0.1:5001"],
        "out": ["stream", clip, url],
        "video": ["video", url, str(tmp_path / "o.mp4")],
    }[where]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 1
    lines = r.output.strip().splitlines()
    assert len(lines) == 1, r.output
    assert lines[0] == (
        "streamcolor: this FFmpeg (PyAV's) has no srt:// protocol; PyAV's wheels come without libsrt: "
        "use udp:// or rtmp://, or a PyAV built against an FFmpeg with it"
    )
    assert not (tmp_path / "o.mp4").exists()


def test_protocols_present_are_not_refused():
    assert has_protocol("udp://127.0.0.1:5000") and has_protocol("/a/file.mp4")
