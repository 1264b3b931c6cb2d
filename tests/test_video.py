"""`colorize_video` end to end on tiny generated clips: what a user would notice."""

from __future__ import annotations

import av
import numpy as np
import pytest
from media import make_audio_only, make_video, read_video

from streamcolor.api import ColorizeConfig, colorize_video
from streamcolor.errors import ConfigError, InputError, OutputError
from streamcolor.output_plan import EncodeOptions, partial_path

LOSSLESS = ColorizeConfig(threads=2, encode=EncodeOptions(crf=0))


def chroma_strength(rgb: np.ndarray) -> float:
    """Mean distance of each pixel from gray, 0-255 scale (0 for a gray image)."""
    rgb = rgb.astype(np.float32)
    return float(np.abs(rgb - rgb.mean(axis=2, keepdims=True)).mean())


@pytest.mark.parametrize("temporal", ["off", "causal", "bidirectional"])
def test_keeps_frames_timestamps_audio_rotation_luma(temporal, vfr_clip, tmp_path, colorizer):
    out = tmp_path / "out.mp4"
    cfg = ColorizeConfig(threads=2, temporal=temporal, encode=EncodeOptions(crf=0))
    summary = colorize_video(vfr_clip, out, cfg, colorizer=colorizer)
    src, dst = read_video(vfr_clip), read_video(out)
    assert summary.frames == len(src["times"]) == 15
    assert dst["times"] == src["times"]  # variable frame rate kept frame by frame
    assert len(set(np.diff(src["times"]).round(3))) > 1  # the input really is VFR
    assert dst["audio_packets"] == src["audio_packets"]  # audio copied bit-exact
    assert dst["rotation"] == src["rotation"] == 90
    assert (dst["width"], dst["height"]) == (src["width"], src["height"])
    assert (dst["colorspace"], dst["color_range"]) == (src["colorspace"], src["color_range"]) == (1, 1)
    for a, b in zip(src["luma"], dst["luma"]):
        np.testing.assert_array_equal(a, b)  # lossless encode: luma bit-exact
    assert not partial_path(out).exists()


def test_output_is_coloured_even_from_colour_input(vfr_clip, tmp_path, colorizer):
    out = tmp_path / "out.mp4"
    colorize_video(vfr_clip, out, ColorizeConfig(threads=2), colorizer=colorizer)
    assert np.mean([chroma_strength(f) for f in read_video(out)["rgb"]]) > 3.0


def test_gray_input_becomes_colour(tmp_path, colorizer):
    import av
    from media import scene

    gray = tmp_path / "gray.mkv"
    with av.open(str(gray), "w") as c:
        s = c.add_stream("ffv1", rate=25)
        s.width, s.height, s.pix_fmt = 96, 64, "gray"
        for i in range(6):
            f = av.VideoFrame.from_ndarray(scene(64, 96, i).mean(axis=2).astype(np.uint8), format="gray")
            f.pts = i
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    out = tmp_path / "gray_out.mp4"
    colorize_video(gray, out, LOSSLESS, colorizer=colorizer)
    dst = read_video(out)
    assert len(dst["times"]) == 6
    assert dst["color_range"] == 2  # gray is full range, and tagged so
    assert np.mean([chroma_strength(f) for f in dst["rgb"]]) > 3.0


@pytest.mark.parametrize(
    "kind, kwargs, suffix",
    [
        ("odd size", dict(width=65, height=49, codec="ffv1"), ".mkv"),
        ("10-bit", dict(codec="ffv1", pix_fmt="yuv420p10le"), ".mkv"),
        ("4:4:4", dict(codec="libx264", pix_fmt="yuv444p"), ".mp4"),
        ("MPEG-4 in AVI", dict(codec="mpeg4", audio=False), ".avi"),
        ("full range", dict(codec="libx264", pix_fmt="yuvj420p"), ".mp4"),
    ],
)
def test_unusual_inputs_are_colorized(kind, kwargs, suffix, tmp_path, colorizer):
    src = make_video(tmp_path / f"in{suffix}", **kwargs)
    out = tmp_path / "out.mp4"
    warnings = []
    colorize_video(src, out, LOSSLESS, colorizer=colorizer, warn=warnings.append)
    a, b = read_video(src), read_video(out)
    assert (b["width"], b["height"]) == (a["width"], a["height"]), kind
    assert b["times"] == a["times"], kind
    for x, y in zip(a["luma"], b["luma"]):
        assert np.abs(x.astype(int) - y).max() <= 1, kind  # 10-bit input rounds to 8 bits
    if a["width"] % 2:
        assert any("odd frame size" in w for w in warnings)


@pytest.mark.parametrize("codec, suffix", [("ffv1", ".mkv"), ("prores", ".mov"), ("hevc", ".mkv")])
def test_archival_codecs(codec, suffix, vfr_clip, tmp_path, colorizer):
    out = tmp_path / f"master{suffix}"
    cfg = ColorizeConfig(threads=2, encode=EncodeOptions(codec=codec))
    colorize_video(vfr_clip, out, cfg, colorizer=colorizer)
    dst = read_video(out)
    assert dst["codec"] == {"ffv1": "ffv1", "prores": "prores", "hevc": "hevc"}[codec]
    if codec == "prores":
        with av.open(str(out)) as c:
            assert c.streams.video[0].codec_context.profile == "HQ"
    assert len(dst["times"]) == 15
    assert len(dst["audio_packets"]) == len(read_video(vfr_clip)["audio_packets"])


def test_encoder_options_per_codec():
    from streamcolor.output_plan import encoder_options

    assert encoder_options(EncodeOptions(codec="ffv1"), "ffv1") == {"level": "3", "slices": "4", "slicecrc": "1"}
    assert encoder_options(EncodeOptions(codec="prores"), "prores_ks") == {"profile": "3"}
    hevc = encoder_options(EncodeOptions(codec="hevc", crf=20), "libx265")
    assert hevc == {"x265-params": "log-level=error", "crf": "20", "preset": "veryfast"}
    live = encoder_options(EncodeOptions(crf=23, tune="zerolatency"), "libx264")
    assert live == {"crf": "23", "preset": "veryfast", "tune": "zerolatency"}
    nv = encoder_options(EncodeOptions(crf=23, tune="zerolatency", hw_encode=True), "h264_nvenc")
    assert nv["cq"] == "23" and nv["tune"] == "ll" and "crf" not in nv


def test_audio_reencoded_when_container_cannot_hold_it(tmp_path, colorizer):
    import av

    src = make_video(tmp_path / "video.mkv", audio=False)
    # add an Opus track in a second pass: MKV holds Opus, AVI does not
    opus = tmp_path / "opus.mkv"
    with av.open(str(src)) as i, av.open(str(opus), "w") as o:
        v = o.add_stream_from_template(i.streams.video[0])
        a = o.add_stream("libopus", rate=48000)
        a.layout = "stereo"
        for p in i.demux(i.streams.video[0]):
            if p.size:
                p.stream = v
                o.mux(p)
        for start in range(0, 48000 // 2, 960):
            af = av.AudioFrame.from_ndarray(np.zeros((2, 960), np.float32), format="fltp", layout="stereo")
            af.sample_rate, af.pts = 48000, start
            for p in a.encode(af):
                o.mux(p)
        for p in a.encode():
            o.mux(p)
    out = tmp_path / "out.avi"
    warnings = []
    colorize_video(opus, out, ColorizeConfig(threads=2), colorizer=colorizer, warn=warnings.append)
    dst = read_video(out)
    assert dst["audio_codec"] == "mp3" or dst["audio_codec"].startswith("mp3")
    assert dst["audio_packets"]
    assert any("re-encoding" in w for w in warnings)


def test_interrupt_leaves_no_output(vfr_clip, tmp_path, colorizer):
    out = tmp_path / "out.mp4"

    def stop(progress):
        if progress.frames >= 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        colorize_video(vfr_clip, out, LOSSLESS, on_progress=stop, colorizer=colorizer)
    assert not out.exists()
    assert not partial_path(out).exists()


def test_damaged_stream_is_finished_with_a_warning(tmp_path, colorizer):
    src = make_video(tmp_path / "ok.avi", frames=40, audio=False, codec="mpeg4")  # a keyframe every 12
    data = bytearray(src.read_bytes())
    rng = np.random.default_rng(0)
    mid = len(data) // 2
    data[mid : mid + 3000] = rng.integers(0, 256, 3000, dtype=np.uint8).tobytes()
    broken = tmp_path / "broken.avi"
    broken.write_bytes(bytes(data))
    out = tmp_path / "out.mp4"
    warnings = []
    summary = colorize_video(broken, out, ColorizeConfig(threads=2), colorizer=colorizer, warn=warnings.append)
    assert out.exists()
    assert 10 <= summary.frames <= 40
    assert warnings  # the user is told that something was skipped or cut short
    assert len(read_video(out)["times"]) == summary.frames


def test_bad_inputs_are_refused_without_output(tmp_path, colorizer):
    out = tmp_path / "out.mp4"
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 50)
    audio = make_audio_only(tmp_path / "voice.m4a")
    empty = tmp_path / "empty.mkv"
    import av

    with av.open(str(empty), "w") as c:  # a video stream with no frames
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        c.start_encoding()
    assert empty.stat().st_size > 0
    zeroed = make_video(tmp_path / "zeroed.mp4", audio=False)  # every video packet unreadable
    data = bytearray(zeroed.read_bytes())
    start, end = data.index(b"mdat") + 4, data.index(b"moov") - 4
    data[start:end] = bytes(end - start)
    zeroed.write_bytes(bytes(data))
    cases = [
        (tmp_path / "missing.mp4", InputError, "not found"),
        (text, InputError, "not a video"),
        (audio, InputError, "no video stream"),
        (empty, InputError, "cannot open"),
        (zeroed, InputError, "no decodable video frames|no size"),
    ]
    for src, err, words in cases:
        with pytest.raises(err, match=words):
            colorize_video(src, out, ColorizeConfig(threads=2), colorizer=colorizer)
        assert not out.exists() and not partial_path(out).exists(), src


def test_bad_outputs_are_refused(vfr_clip, tmp_path, colorizer):
    with pytest.raises(OutputError, match="does not exist"):
        colorize_video(vfr_clip, tmp_path / "nope" / "out.mp4", colorizer=colorizer)
    with pytest.raises(OutputError, match="same file"):
        colorize_video(vfr_clip, vfr_clip, colorizer=colorizer)
    with pytest.raises(OutputError, match="unknown output container"):
        colorize_video(vfr_clip, tmp_path / "out.xyz", colorizer=colorizer)
    with pytest.raises(ConfigError, match="cannot go into"):
        colorize_video(
            vfr_clip, tmp_path / "out.mp4", ColorizeConfig(encode=EncodeOptions(codec="prores")), colorizer=colorizer
        )
    assert not (tmp_path / "out.mp4").exists()


def test_keyframe_interval_defaults_follow_the_filter():
    assert ColorizeConfig(temporal="off").keyframe_interval == 1
    assert ColorizeConfig(temporal="bidirectional").keyframe_interval == 2
    with pytest.raises(ConfigError, match="needs --temporal"):
        ColorizeConfig(temporal="off", keyframe_interval=3)


def test_bad_config_values_say_so():
    with pytest.raises(ConfigError, match="choose one of"):
        ColorizeConfig(temporal="sideways")
    with pytest.raises(ConfigError, match="choose one of"):
        EncodeOptions(codec="divx")


def test_memory_is_bounded_by_queues_not_length(tmp_path, colorizer):
    """The decoder cannot run ahead of the encoder by more than the queue sizes."""
    import streamcolor.api as api

    src = make_video(tmp_path / "long.mp4", frames=120, audio=False, width=64, height=48)
    seen = {"max_ahead": 0}
    original = api.VideoSource.items

    def counting_items(self, *a, **k):
        for item in original(self, *a, **k):
            seen["decoded"] = seen.get("decoded", 0) + 1
            yield item

    def progress(p):
        seen["max_ahead"] = max(seen["max_ahead"], seen.get("decoded", 0) - p.frames)

    api.VideoSource.items = counting_items
    try:
        colorize_video(
            src, tmp_path / "o.mp4", ColorizeConfig(threads=2, batch=4), on_progress=progress, colorizer=colorizer
        )
    finally:
        api.VideoSource.items = original
    # two queues of 16, a batch of key frames with the frames between them, the
    # bidirectional filter's look-ahead, and one in hand
    from streamcolor.temporal import TemporalConfig

    assert 0 < seen["max_ahead"] <= 16 + 16 + 4 * 2 + TemporalConfig().lookahead + 2


def test_subtitles_are_copied(tmp_path, colorizer):
    import av

    srt = tmp_path / "s.srt"
    srt.write_text("1\n00:00:00,000 --> 00:00:00,300\nHello\n\n2\n00:00:00,300 --> 00:00:00,500\nWorld\n")
    video = make_video(tmp_path / "v.mkv", frames=15)
    src = tmp_path / "with_subs.mkv"
    with av.open(str(video)) as vi, av.open(str(srt)) as si, av.open(str(src), "w") as o:
        streams = {s.index: o.add_stream_from_template(s) for s in vi.streams}
        sub = o.add_stream_from_template(si.streams[0])
        for p in vi.demux():
            if p.size:
                p.stream = streams[p.stream.index]
                o.mux(p)
        for p in si.demux():
            if p.size:
                p.stream = sub
                o.mux(p)
    warnings = []
    colorize_video(src, tmp_path / "out.mkv", ColorizeConfig(threads=2), colorizer=colorizer, warn=warnings.append)
    assert warnings == []
    with av.open(str(tmp_path / "out.mkv")) as c:
        subs = [s for s in c.streams if s.type == "subtitle"]
        assert [bytes(p) for p in c.demux(subs[0]) if p.size] == [b"Hello", b"World"]
    colorize_video(src, tmp_path / "out.mp4", ColorizeConfig(threads=2), colorizer=colorizer, warn=warnings.append)
    assert any("subtitle stream" in w and "not copied" in w for w in warnings)  # MP4 cannot hold SRT
