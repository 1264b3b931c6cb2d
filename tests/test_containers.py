"""Each supported output container, round trip: a video codec and an audio codec it can
hold, the right frame rate, every frame in order; and every refusal before any warning."""

from __future__ import annotations

import av
import numpy as np
import pytest
from media import make_video, read_video

from streamcolor.api import ColorizeConfig, colorize_video
from streamcolor.errors import ConfigError, OutputError
from streamcolor.output_plan import CONTAINERS, EncodeOptions

FAST = ColorizeConfig(threads=2, temporal="off")
# extension -> (video codec, audio codec) in the output; None: no audio stream
EXPECTED = {
    ".mp4": ("h264", "aac"),
    ".m4v": ("h264", "aac"),
    ".mov": ("h264", "aac"),
    ".mkv": ("h264", "aac"),
    ".webm": ("vp9", "opus"),
    ".avi": ("h264", "aac"),
    ".ts": ("h264", "aac"),
    ".flv": ("h264", "aac"),
    ".gif": ("gif", None),
}


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    # 44.1 kHz would not go into Opus as it is: 48 kHz here, 44.1 kHz in the webm test below
    return make_video(tmp_path_factory.mktemp("containers") / "in.mp4", frames=12)


def test_every_listed_container_is_tested():
    assert set(EXPECTED) == set(CONTAINERS)


@pytest.mark.parametrize("suffix", list(EXPECTED))
def test_round_trip(suffix, clip, tmp_path, colorizer):
    out = tmp_path / f"out{suffix}"
    warnings: list[str] = []
    summary = colorize_video(clip, out, FAST, colorizer=colorizer, warn=warnings.append)
    got = read_video(out)
    video, audio = EXPECTED[suffix]
    assert summary.frames == 12 and len(got["times"]) == 12
    assert got["codec"] == video and got["audio_codec"] == audio
    assert all(b > a for a, b in zip(got["times"], got["times"][1:])), got["times"]
    gaps = np.diff(got["times"])
    assert np.allclose(gaps, 0.04, atol=0.011), gaps  # 25 fps (GIF: centiseconds)
    with av.open(str(out)) as c:
        assert c.streams.video[0].average_rate == 25
    rgb = got["rgb"][6].astype(np.float32)
    assert np.abs(rgb - rgb.mean(axis=2, keepdims=True)).mean() > 2.0  # colour present
    if audio is None:
        assert any("audio stream #1 (aac) cannot go into .gif: not copied" in w for w in warnings)
    elif audio != "aac":
        assert any("re-encoding it to opus" in w for w in warnings)
    else:
        assert warnings == []


def test_webm_resamples_audio_opus_cannot_take(tmp_path, colorizer):
    src = tmp_path / "in.mkv"
    with av.open(str(make_video(tmp_path / "a.mp4", frames=6))) as c, av.open(str(src), "w") as o:
        v = o.add_stream_from_template(c.streams.video[0])
        a = o.add_stream("aac", rate=44100)
        a.layout = "stereo"
        for p in c.demux(c.streams.video[0]):
            if p.dts is not None:
                p.stream = v
                o.mux(p)
        for start in range(0, 44100 // 4, 1024):
            af = av.AudioFrame.from_ndarray(np.zeros((2, 1024), np.float32), format="fltp", layout="stereo")
            af.sample_rate, af.pts = 44100, start
            for p in a.encode(af):
                o.mux(p)
        for p in a.encode():
            o.mux(p)
    colorize_video(src, tmp_path / "o.webm", FAST, colorizer=colorizer, warn=lambda m: None)
    with av.open(str(tmp_path / "o.webm")) as c:
        assert c.streams.audio[0].codec_context.name == "opus" and c.streams.audio[0].sample_rate == 48000


def test_avi_declares_the_frame_rate_and_keeps_frame_order(tmp_path, colorizer):
    # a fine input clock (1/600 s) and B-frames: AVI has no per-frame times, so one frame per tick
    src = make_video(tmp_path / "fine.mkv", frames=12, rate=60, options={"bf": "2"})
    colorize_video(src, tmp_path / "o.avi", FAST, colorizer=colorizer)
    with av.open(str(tmp_path / "o.avi")) as c:
        assert c.streams.video[0].average_rate == 60
        times = [f.time for f in c.decode(video=0)]
    assert len(times) == 12 and all(b > a for a, b in zip(times, times[1:]))


@pytest.mark.parametrize(
    "suffix, codec, words",
    [
        (".webm", "h264", "codec h264 cannot go into .webm outputs; it holds: vp9, av1"),
        (".gif", "h264", "codec h264 cannot go into .gif outputs; it holds: gif"),
        (".avi", "prores", "codec prores cannot go into .avi"),
        (".ts", "ffv1", "codec ffv1 cannot go into .ts outputs; it holds: h264, hevc, av1"),
    ],
)
def test_refused_before_any_warning_or_file(suffix, codec, words, clip, tmp_path, colorizer):
    warnings: list[str] = []
    cfg = ColorizeConfig(threads=2, encode=EncodeOptions(codec=codec))
    with pytest.raises(ConfigError, match=words):
        colorize_video(clip, tmp_path / f"o{suffix}", cfg, colorizer=colorizer, warn=warnings.append)
    assert warnings == [] and list(tmp_path.iterdir()) == []


def test_av1_runs_in_one_summary_line(clip, tmp_path):
    """SVT-AV1 writes its own banner to stderr unless told not to."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    env.pop("SVT_LOG", None)
    out = tmp_path / "o.webm"
    cmd = [sys.executable, "-m", "streamcolor", "video", str(clip), str(out), "--codec", "av1", "--temporal", "off"]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 2 and "re-encoding it to opus" in lines[0] and lines[1].startswith("colorized 12 frames"), (
        r.stderr
    )
    assert read_video(out)["codec"] in ("av1", "libdav1d")  # the decoder FFmpeg picks


def test_unknown_container_lists_every_supported_one(clip, tmp_path, colorizer):
    with pytest.raises(OutputError) as e:
        colorize_video(clip, tmp_path / "o.xyz", FAST, colorizer=colorizer)
    for suffix in CONTAINERS:
        assert suffix in str(e.value)
