"""Interlaced input: the field order is kept in every output container that has a place
for it, and each field's chroma is computed from that field's own luma."""

from __future__ import annotations

import av
import numpy as np
import pytest
from media import scene

from streamcolor.api import ColorizeConfig, colorize_video

FAST = ColorizeConfig(threads=2, temporal="off")
TT, BB = 2, 3  # FFmpeg's AVFieldOrder


def interlaced(path, top_first: bool, frames: int = 6):
    """An interlaced input: MPEG-2 in MPEG-PS bottom field first (PAL DVD, as FFmpeg's
    encoder codes it), H.264 in Matroska top field first (x264 --tff, HD broadcast)."""
    codec = "libx264" if top_first else "mpeg2video"
    path = path.with_suffix(".mkv" if top_first else ".mpg")
    with av.open(str(path), "w") as c:
        v = c.add_stream(codec, rate=25)
        v.width, v.height, v.pix_fmt = 96, 64, "yuv420p"
        v.codec_context.flags |= av.codec.context.Flags.interlaced_dct | av.codec.context.Flags.interlaced_me
        if top_first:
            v.codec_context.field_order = TT
            v.options = {"x264-params": "tff=1"}
        for i in range(frames):
            f = av.VideoFrame.from_ndarray(scene(64, 96, i), format="rgb24").reformat(format="yuv420p")
            f.pts = i
            for p in v.encode(f):
                c.mux(p)
        for p in v.encode():
            c.mux(p)
    return path


@pytest.mark.parametrize("top_first, order", [(True, TT), (False, BB)])
@pytest.mark.parametrize("suffix", [".mp4", ".mkv", ".mov"])
def test_field_order_is_kept(top_first, order, suffix, tmp_path, colorizer):
    src = interlaced(tmp_path / "in", top_first)
    with av.open(str(src)) as c:
        assert c.streams.video[0].codec_context.field_order == order  # the input is what we think
    out = tmp_path / f"out{suffix}"
    summary = colorize_video(src, out, FAST, colorizer=colorizer)
    with av.open(str(out)) as c:
        assert c.streams.video[0].codec_context.field_order == order
        frames = list(c.decode(video=0))
    assert summary.frames == len(frames) == 6
    assert all(f.interlaced_frame for f in frames)


def test_progressive_stays_progressive(tmp_path, colorizer):
    from media import make_video

    src = make_video(tmp_path / "p.mp4", frames=3, audio=False)
    colorize_video(src, tmp_path / "o.mkv", FAST, colorizer=colorizer)
    with av.open(str(tmp_path / "o.mkv")) as c:
        assert c.streams.video[0].codec_context.field_order in (0, 1)
        assert not any(f.interlaced_frame for f in c.decode(video=0))


def test_each_field_gets_the_chroma_of_its_own_luma(colorizer):
    """Fields 20 ms apart that differ (dark top field, bright bottom one: a cut or fast
    motion): woven, each chroma sample would be computed for the mean of both; per field,
    each chroma row is the one its own field would get alone."""
    y8 = np.empty((64, 96), np.uint8)
    y8[0::2], y8[1::2] = 70, 180
    ab_lo = np.zeros((16, 24, 2), np.float32)
    ab_lo[..., 0], ab_lo[..., 1] = 20.0, 35.0  # a warm colour, the same for both fields
    cb, cr = colorizer.field_chroma_planes(y8, ab_lo, (32, 48), False, "smpte170m")
    for parity in (0, 1):
        alone = colorizer.chroma_planes(np.ascontiguousarray(y8[parity::2]), ab_lo, (16, 48), False, "smpte170m")
        assert np.array_equal(cb[parity::2], alone[0]) and np.array_equal(cr[parity::2], alone[1])
    assert np.abs(cb[0::2].astype(int) - cb[1::2]).mean() > 2  # the two fields' chroma really differ
    woven = colorizer.chroma_planes(y8, ab_lo, (32, 48), False, "smpte170m")[0]
    assert np.abs(woven[0::2].astype(int) - woven[1::2]).mean() < 1  # what mixing the fields gave


def field_orders(path) -> list[str]:
    """Each decoded frame's field order as FFmpeg's showinfo filter prints it: T (top first),
    B (bottom first), P (progressive)."""
    import av.logging

    with av.open(str(path)) as c:
        s = c.streams.video[0]
        graph = av.filter.Graph()
        src, info, sink = graph.add_buffer(template=s), graph.add("showinfo"), graph.add("buffersink")
        src.link_to(info)
        info.link_to(sink)
        graph.configure()
        av.logging.set_level(av.logging.INFO)
        try:
            with av.logging.Capture() as logs:
                for f in c.decode(s):
                    graph.push(f)
                    graph.pull()
        finally:
            av.logging.set_level(None)
    return [m.split(" i:")[1][0] for _, _, m in logs if " i:" in m]


@pytest.mark.parametrize("top_first", [True, False])
@pytest.mark.parametrize("codec, suffix", [("ffv1", ".mkv"), ("ffv1", ".avi"), ("prores", ".mov"), ("h264", ".ts")])
def test_intra_and_other_codecs_mark_every_frame_interlaced(top_first, codec, suffix, tmp_path, colorizer):
    """Issue 23: FFV1 came out progressive (its picture structure is read from the frames'
    flags, which a new frame lacks); AVI has no field order of its own, so the bitstream's is
    the only one there is."""
    from streamcolor.output_plan import EncodeOptions

    src = interlaced(tmp_path / "in", top_first)
    out = tmp_path / f"out{suffix}"
    warnings = []
    cfg = ColorizeConfig(threads=2, temporal="off", encode=EncodeOptions(codec=codec))
    colorize_video(src, out, cfg, colorizer=colorizer, warn=warnings.append)
    assert field_orders(out) == ["T" if top_first else "B"] * 6 and not warnings
    if codec == "ffv1":  # lossless: the luma is the input's, field by field
        with av.open(str(src)) as a, av.open(str(out)) as b:
            for x, y in zip(a.decode(video=0), b.decode(video=0)):
                assert np.array_equal(x.to_ndarray(format="gray"), y.to_ndarray(format="gray"))


@pytest.mark.parametrize("codec, suffix, words", [("vp9", ".webm", "vp9 has no way"), ("hevc", ".mkv", "x265")])
def test_codecs_that_cannot_mark_fields_say_so(codec, suffix, words, tmp_path, colorizer):
    from streamcolor.output_plan import EncodeOptions

    src = interlaced(tmp_path / "in", True)
    warnings = []
    cfg = ColorizeConfig(threads=2, temporal="off", encode=EncodeOptions(codec=codec))
    colorize_video(src, tmp_path / f"out{suffix}", cfg, colorizer=colorizer, warn=warnings.append)
    assert len(warnings) == 1 and words in warnings[0]
