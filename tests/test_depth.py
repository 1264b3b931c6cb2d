"""High bit depth kept (issue 23): 10/12/16-bit inputs keep their luma at their depth in
outputs that hold it, and say when an output cannot."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from media import scene

from streamcolor import color
from streamcolor.api import ColorizeConfig, colorize_video
from streamcolor.output_plan import EncodeOptions
from streamcolor.sink import rescale_luma

W, H, FRAMES = 640, 64, 4  # a ramp across 640 columns (top half): up to 640 luma levels


def write_planes(path: Path, codec: str, pix_fmt: str, planes: list[np.ndarray], frames: int = FRAMES) -> Path:
    """A clip whose every frame has these planes (uint16 codes, LSB-aligned)."""
    with av.open(str(path), "w") as c:
        v = c.add_stream(codec, rate=24)
        v.width, v.height, v.pix_fmt = W, H, pix_fmt
        for i in range(frames):
            f = av.VideoFrame(W, H, pix_fmt)
            for p, data in zip(f.planes, planes):
                np.frombuffer(p, np.uint16).reshape(p.height, p.line_size // 2)[:, : p.width] = data
            f.pts = i
            for packet in v.encode(f):
                c.mux(packet)
        for packet in v.encode():
            c.mux(packet)
    return path


def ramp_clip(path: Path, codec: str, pix_fmt: str, bits: int) -> tuple[Path, np.ndarray]:
    """Top half a smooth horizontal luma ramp over the limited range at `bits`, bottom half
    a landscape (something the network colours); neutral chroma. -> (the file, the ideal
    ramp in 8-bit code units)."""
    lo, hi = 16 << (bits - 8), 235 << (bits - 8)
    ideal = np.linspace(lo, hi, W)
    y = np.rint(ideal)[None].repeat(H, 0).astype(np.uint16)
    gray = color.rgb_to_gray(scene(H // 2, W, 0).astype(np.float32) / 255.0)
    y[H // 2 :] = np.rint(lo + gray * (hi - lo)).astype(np.uint16)
    c = av.VideoFormat(pix_fmt, W, H).components[1]
    neutral = np.full((c.height, c.width), 1 << (bits - 1), np.uint16)
    return write_planes(path, codec, pix_fmt, [y, neutral, neutral]), ideal / (1 << (bits - 8))


def decoded(path: Path) -> list[av.VideoFrame]:
    with av.open(str(path)) as c:
        return list(c.decode(video=0))


def luma_of(frame: av.VideoFrame) -> np.ndarray:
    p = frame.planes[0]
    deep = frame.format.components[0].bits > 8
    dtype = np.uint16 if deep else np.uint8
    return np.frombuffer(p, dtype).reshape(p.height, p.line_size // (2 if deep else 1))[:, : p.width].copy()


def ramp_quality(luma: np.ndarray, ideal8: np.ndarray, bits: int) -> tuple[int, float]:
    """(distinct luma levels along the ramp, RMS residual after a linear fit to the ideal
    ramp, in 8-bit steps). 8-bit rounding alone leaves 1/sqrt(12) = 0.29 of a step."""
    row = luma[luma.shape[0] // 4].astype(np.float64) / (1 << (bits - 8))
    fit = np.polyval(np.polyfit(ideal8, row, 1), ideal8)
    return len(np.unique(row)), float(np.sqrt(np.mean((row - fit) ** 2)))


def colour_of(frame: av.VideoFrame) -> float:
    """Mean distance from gray of the landscape half, 8-bit RGB units."""
    rgb = frame.to_ndarray(format="rgb24")[H // 2 :].astype(np.int16)
    return float(np.abs(rgb - rgb.mean(axis=2, keepdims=True)).mean())


def test_ten_bit_prores_into_ffv1_keeps_its_luma(tmp_path, colorizer):
    src, ideal8 = ramp_clip(tmp_path / "master.mov", "prores_ks", "yuv422p10le", 10)
    out = tmp_path / "colour.mkv"
    warnings = []
    cfg = ColorizeConfig(threads=2, encode=EncodeOptions(codec="ffv1"))
    colorize_video(src, out, cfg, colorizer=colorizer, warn=warnings.append)
    got, given = decoded(out), decoded(src)
    assert len(got) == FRAMES and not warnings
    assert got[0].format.name == "yuv420p10le"
    for a, b in zip(given, got):
        assert np.array_equal(luma_of(a), luma_of(b))  # untouched at 10 bits
        assert colour_of(b) > 3.0
    levels, residual = ramp_quality(luma_of(got[0]), ideal8, 10)
    assert levels > 300 and residual < 0.2, (levels, residual)


def test_sixteen_bit_input_keeps_sixteen_bits_in_ffv1(tmp_path, colorizer):
    src, ideal8 = ramp_clip(tmp_path / "scan.mkv", "ffv1", "yuv444p16le", 16)
    out = tmp_path / "colour.mkv"
    colorize_video(src, out, ColorizeConfig(threads=2, encode=EncodeOptions(codec="ffv1")), colorizer=colorizer)
    got = decoded(out)
    assert got[0].format.name == "yuv420p16le"
    assert np.array_equal(luma_of(got[-1]), luma_of(decoded(src)[-1]))
    levels, residual = ramp_quality(luma_of(got[0]), ideal8, 16)
    assert levels > 300 and residual < 0.2


def test_auto_codec_keeps_depth_and_says_what_it_cannot(tmp_path, colorizer):
    src, ideal8 = ramp_clip(tmp_path / "scan.mkv", "ffv1", "yuv420p16le", 16)
    # .mp4 with --codec auto: H.264 High 10 (--crf 0 lossless at 10 bits: the luma rounded once)
    warnings = []
    out = tmp_path / "colour.mp4"
    cfg = ColorizeConfig(threads=2, encode=EncodeOptions(crf=0))
    colorize_video(src, out, cfg, colorizer=colorizer, warn=warnings.append)
    frame = decoded(out)[0]
    assert frame.format.name == "yuv420p10le"
    assert warnings == [
        "h264 holds 10 of the input's 16 bits: luma rounded to 10 bits (.mkv with --codec ffv1 keeps them all)"
    ]
    expected = rescale_luma(luma_of(decoded(src)[0]), 16, 10, False)
    assert np.array_equal(luma_of(frame), expected)
    assert ramp_quality(luma_of(frame), ideal8, 10)[0] > 300
    # WebM's VP9 here holds 8 bits: said once, before any work
    warnings.clear()
    colorize_video(src, tmp_path / "colour.webm", ColorizeConfig(threads=2), colorizer=colorizer, warn=warnings.append)
    assert decoded(tmp_path / "colour.webm")[0].format.name == "yuv420p"
    assert warnings == [
        "vp9 output holds 8 bits here: the 16-bit input is written at 8 bits (.mkv with --codec ffv1 keeps its depth)"
    ]


def test_eight_bit_input_stays_eight_bit(tmp_path, vfr_clip, colorizer):
    out = tmp_path / "out.mkv"
    colorize_video(vfr_clip, out, ColorizeConfig(threads=2, encode=EncodeOptions(codec="ffv1")), colorizer=colorizer)
    assert decoded(out)[0].format.name == "yuv420p"


@pytest.mark.parametrize(
    "bits_in, bits_out, full, codes, expected",
    [
        (10, 16, False, [64, 940, 1023], [4096, 60160, 65472]),  # limited: whole bits (BT.2100)
        (16, 10, False, [4096, 60160, 65535], [64, 940, 1023]),
        (10, 16, True, [0, 1023], [0, 65535]),  # full: 0..max onto 0..max
        (12, 12, True, [7, 4000], [7, 4000]),
    ],
)
def test_rescale_luma(bits_in, bits_out, full, codes, expected):
    got = rescale_luma(np.array([codes], np.uint16), bits_in, bits_out, full)
    assert got.dtype == np.uint16 and got.tolist() == [expected]


def test_full_chroma_input_into_prores_is_4444(tmp_path, colorizer):
    src, ideal8 = ramp_clip(tmp_path / "scan.mkv", "ffv1", "yuv444p12le", 12)
    out = tmp_path / "master.mov"
    warnings = []
    cfg = ColorizeConfig(threads=2, encode=EncodeOptions(codec="prores"))
    colorize_video(src, out, cfg, colorizer=colorizer, warn=warnings.append)
    with av.open(str(out)) as c:
        assert c.streams.video[0].codec_context.profile == "4444"
    frame = decoded(out)[0]
    assert frame.format.name == "yuv444p12le"  # FFmpeg's decoder gives ProRes 4444 at 12 bits
    assert warnings == [
        "prores holds 10 of the input's 12 bits: luma rounded to 10 bits (.mkv with --codec ffv1 keeps them all)"
    ]
    assert ramp_quality(luma_of(frame), ideal8, 12)[0] > 300 and colour_of(frame) > 3.0
