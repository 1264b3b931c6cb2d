"""Container and stream metadata the output can hold are copied: the title, each stream's
language, the timecode (MOV/MP4 as a timecode track, Matroska as a tag), the audio's
disposition."""

from __future__ import annotations

import av
import pytest
from media import make_video

from streamcolor.api import ColorizeConfig, colorize_video

FAST = ColorizeConfig(threads=2, temporal="off")


@pytest.fixture(scope="module")
def tagged(tmp_path_factory):
    folder = tmp_path_factory.mktemp("meta")
    plain = make_video(folder / "plain.mp4", frames=6)
    src = folder / "tagged.mov"
    with av.open(str(plain)) as i, av.open(str(src), "w") as o:
        o.metadata.update({"title": "Reel 4: harbour", "comment": "scanned 2019"})
        v = o.add_stream_from_template(i.streams.video[0])
        v.metadata.update({"timecode": "01:00:00:00", "language": "fra"})
        a = o.add_stream_from_template(i.streams.audio[0])
        a.metadata["language"] = "eng"
        streams = {0: v, 1: a}
        for p in i.demux():
            if p.dts is not None:
                p.stream = streams[p.stream.index]
                o.mux(p)
    return src


def tags(d: dict) -> dict:
    return {k.lower(): v for k, v in d.items()}


@pytest.mark.parametrize("suffix", [".mov", ".mp4", ".mkv"])
def test_title_languages_and_timecode_are_copied(suffix, tagged, tmp_path, colorizer):
    out = tmp_path / f"out{suffix}"
    colorize_video(tagged, out, FAST, colorizer=colorizer)
    with av.open(str(out)) as c:
        assert tags(c.metadata)["title"] == "Reel 4: harbour"
        assert tags(c.metadata)["comment"] == "scanned 2019"
        video, audio = c.streams.video[0], c.streams.audio[0]
        assert tags(video.metadata)["language"] == "fra"
        assert tags(audio.metadata)["language"] == "eng"
        assert tags(video.metadata)["timecode"].startswith("01:00:00:00")
        if suffix != ".mkv":  # a real timecode track, as editors read it
            assert any(s.type == "data" and tags(s.metadata).get("timecode") for s in c.streams)


def test_webm_keeps_title_and_language_of_reencoded_audio(tagged, tmp_path, colorizer):
    out = tmp_path / "out.webm"
    colorize_video(tagged, out, FAST, colorizer=colorizer, warn=lambda m: None)
    with av.open(str(out)) as c:
        assert tags(c.metadata)["title"] == "Reel 4: harbour"
        assert tags(c.streams.audio[0].metadata)["language"] == "eng"
