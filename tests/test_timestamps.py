"""Output times: every stream starts at zero together (the A/V offset kept within a frame)
whatever clock the input started on, and frames whose times repeat, go back or are missing
are written with valid, increasing times, none dropped."""

from __future__ import annotations

from fractions import Fraction

import av
import pytest
from media import make_video, read_video, scene

from streamcolor.api import ColorizeConfig, colorize_video
from streamcolor.source import FrameTimes

FAST = ColorizeConfig(threads=2, temporal="off")
FRAME = 1 / 25


def first_times(path) -> dict[str, float]:
    """Earliest presentation time of each stream type."""
    out: dict[str, float] = {}
    with av.open(str(path)) as c:
        for p in c.demux():
            if p.pts is not None and p.size:
                t = float(p.pts * p.time_base)
                out[p.stream.type] = min(out.get(p.stream.type, t), t)
    return out


@pytest.mark.parametrize(
    "name, start",
    [("ts_default.ts", 0.0), ("ts_clock_3600.ts", 3600.0), ("late.mkv", 5.0), ("late.mov", 2.5)],
)
@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_every_stream_starts_at_zero_together(name, start, suffix, tmp_path, colorizer):
    # MPEG-TS muxers start their clock at 1.4 s anyway; the others start where asked
    src = make_video(tmp_path / name, frames=12, start=start)
    before = first_times(src)
    out = tmp_path / f"out{suffix}"
    colorize_video(src, out, FAST, colorizer=colorizer)
    got = read_video(out)
    assert len(got["times"]) == 12
    # zero within a frame: AAC's priming samples may sit just before it, as in the input
    assert got["times"][0] < FRAME and abs(min(first_times(out).values())) < FRAME
    assert got["times"][-1] < 12 * FRAME  # not an hour of nothing before the picture
    after = first_times(out)
    offset_in = before["audio"] - before["video"]
    offset_out = after["audio"] - after["video"]
    assert abs(offset_out - offset_in) <= FRAME
    assert got["audio_packets"]


def mjpeg_with_times(path, pts: list[int | None]) -> None:
    """An intra-only stream whose frames carry the given times (in 1/25 s): Matroska keeps
    repeats and jumps back as they are, as broken files have them."""
    with av.open(str(path), "w") as c:
        v = c.add_stream("mjpeg", rate=25)
        v.width, v.height, v.pix_fmt = 48, 32, "yuvj420p"
        v.time_base = Fraction(1, 25)
        for i, t in enumerate(pts):
            f = av.VideoFrame.from_ndarray(scene(32, 48, i), format="rgb24").reformat(format="yuvj420p")
            f.pts = i
            for p in v.encode(f):
                p.dts, p.pts = i, t
                c.mux(p)


@pytest.mark.parametrize("suffix", [".mp4", ".mkv", ".mov"])
def test_times_that_repeat_or_go_back_are_rewritten_increasing(suffix, tmp_path, colorizer):
    src = tmp_path / "back.mkv"
    mjpeg_with_times(src, [10, 11, 13, 12, 14, 16, 15, 15, 17])
    out = tmp_path / f"out{suffix}"
    summary = colorize_video(src, out, FAST, colorizer=colorizer)
    times = read_video(out)["times"]
    assert summary.frames == 9 and len(times) == 9
    assert all(b > a for a, b in zip(times, times[1:])), times


def test_packed_b_frames_take_the_decode_times():
    """MPEG-4 with packed B-frames in AVI (megamind_cg_audio.avi): pts in display order
    come out 1 2 3 5 4 6 8 7 ..., dts 1 2 3 4 ...; FFmpeg's rule switches to dts."""
    pts = [1, 2, 3]
    for k in range(4, 40, 3):
        pts += [k + 1, k, k + 2]
    times = FrameTimes(step=1)
    out = [times(p, d) for p, d in zip(pts, range(1, len(pts) + 1))]
    assert all(b > a for a, b in zip(out, out[1:]))
    assert len(out) == len(pts)
    assert max(abs(o - d) for o, d in zip(out, range(1, len(pts) + 1))) <= 1  # within a frame


def test_missing_times_are_filled_one_frame_on():
    times = FrameTimes(step=40, start=1000)
    assert [times(p, None) for p in (None, 1040, None, None, 1200, 1200)] == [0, 40, 80, 120, 200, 240]


@pytest.mark.parametrize("suffix", [".mkv", ".mp4", ".webm"])
def test_audio_that_starts_late_stays_late_copied_or_reencoded(suffix, tmp_path, colorizer):
    # 44.1 kHz AAC half a second after the picture; WebM re-encodes it to 48 kHz Opus
    src = make_video(tmp_path / "late.mkv", frames=25, audio_delay=0.5, audio_rate=44100)
    before = first_times(src)
    colorize_video(src, tmp_path / f"o{suffix}", FAST, colorizer=colorizer, warn=lambda m: None)
    after = first_times(tmp_path / f"o{suffix}")
    assert abs((after["audio"] - after["video"]) - (before["audio"] - before["video"])) <= FRAME


def test_avi_says_it_cannot_hold_an_audio_offset(tmp_path, colorizer):
    src = make_video(tmp_path / "late.mkv", frames=25, audio_delay=0.5)
    warnings: list[str] = []
    colorize_video(src, tmp_path / "o.avi", FAST, colorizer=colorizer, warn=warnings.append)
    assert warnings == [
        "audio stream #1 starts +0.50 s from the video; AVI cannot hold that offset, "
        "so it plays 0.50 s early (use .mkv)"
    ]
