"""`--split-shots`: one long film colorized in pieces at once, joined without re-encoding.

Why the pieces join into what a single run gives: the temporal filters reset at a scene
cut (temporal.is_cut: no colour, flow or look-ahead crosses it), the network's output for a
frame does not depend on the other frames of its batch (ONNX Runtime runs each item
alone), and each piece keeps the single run's key-frame phase (its first frame's index). So
a piece that starts at a cut the filters would detect gets the same chroma, frame for frame,
as the single run. Cuts are found by a first pass over the luma at the network's grid, with
the filters' own test (a mean L* jump; the motion-compensated test of the filters finds a
few more cuts, which then simply stay inside a piece).

Each piece is encoded on its own into a NUT file (it keeps any time base exactly), then the
pieces' video packets and the input's audio and subtitle packets, copied once, are muxed
into the output through its partial file. Timestamps are the input's, so nothing is
shifted. The encoded bitstream differs from a single run's at the joins (each piece starts
with a key frame); the decoded pictures are identical when the encode is lossless.
"""

from __future__ import annotations

import hashlib
import heapq
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

from streamcolor.api import ColorizeConfig, VideoSummary, describe
from streamcolor.colorizer import Colorizer
from streamcolor.errors import ConfigError, InputError, OutputError
from streamcolor.memory import keep_frame_buffers
from streamcolor.output_plan import EncodeOptions, partial_path
from streamcolor.pipeline import StageTimes, colorize_items, run_pipeline, timed
from streamcolor.probe import user_tags
from streamcolor.sink import VideoSink
from streamcolor.source import GrayFrame, VideoSource
from streamcolor.temporal import TemporalConfig, is_cut

CHUNK_DIR = ".streamcolor-chunks"


@dataclass(frozen=True)
class Piece:
    """Frames [first, end) of the input, by index and by pts (the input's time base)."""

    first: int
    end: int
    start_pts: int
    end_pts: int | None  # None: to the end


@dataclass(frozen=True)
class ShotPlan:
    frames: int
    pieces: tuple[Piece, ...]
    rotation: int


def find_cuts(src: Path, colorizer: Colorizer, temporal: TemporalConfig | None = None) -> tuple[list[int], list[int]]:
    """-> (every frame's pts, indexes of the frames that start a new shot), or raise InputError
    when the input cannot be split safely (timestamps missing or not increasing, damage)."""
    temporal = temporal or TemporalConfig()
    pts: list[int] = []
    cuts: list[int] = []
    prev = None
    with VideoSource(src, carry_streams=False) as source:
        full_range = source.info.full_range
        for f in source.items():
            if f.pts is None or (pts and f.pts <= pts[-1]):
                raise InputError(f"{src}: frame timestamps missing or out of order; cannot split it at shots")
            l_lo = colorizer.guide_lo(f.y8, colorizer.output_grid(f.y8.shape), full_range)
            if prev is not None and prev.shape == l_lo.shape and is_cut(l_lo, prev, temporal):
                cuts.append(len(pts))
            prev = l_lo
            pts.append(f.pts)
        if source.decode_errors:
            raise InputError(f"{src}: damaged packets; colorizing it in one piece instead")
    return pts, cuts


def plan_pieces(pts: list[int], cuts: list[int], parts: int, min_frames: int = 48) -> tuple[Piece, ...]:
    """Pieces starting at cuts, about len/(2 parts) frames or more each (two per worker keeps
    the workers evenly busy near the end), none shorter than min_frames."""
    total = len(pts)
    target = max(min_frames, -(-total // max(1, 2 * parts)))
    starts = [0]
    for c in cuts:
        if c - starts[-1] >= target and total - c >= min_frames:
            starts.append(c)
    ends = starts[1:] + [total]
    return tuple(Piece(s, e, pts[s], pts[e] if e < total else None) for s, e in zip(starts, ends))


def plan_shots(src: Path, out: Path, colorizer: Colorizer, parts: int, encode: EncodeOptions) -> ShotPlan:
    """Raises InputError when the file is colorized in one piece instead: see find_cuts, and
    what the join does not do as a single run does (it copies packets and tags, nothing more):
    audio re-encoded for OUT's container, timestamps moved (a stream starting after zero) or
    rounded (a constant-rate container such as AVI), interlaced frames."""
    with VideoSource(src) as source:
        sink = VideoSink(out, source.info, encode, warn=lambda m: None)
        if sink.plan_streams():
            raise InputError(f"{src}: its audio must be re-encoded for {out.suffix}; colorizing it in one piece")
        if source.start or sink.plan.time_base is not None or source.info.interlaced:
            raise InputError(f"{src}: timestamps moved or rounded, or interlaced; colorizing it in one piece")
    pts, cuts = find_cuts(src, colorizer)
    with VideoSource(src, carry_streams=False) as source:
        rotation = next((f.rotation for f in source.items()), 0)
    return ShotPlan(len(pts), plan_pieces(pts, cuts, parts), rotation)


def chunk_folder(outdir: Path, src: Path, out: Path, cfg: ColorizeConfig) -> Path:
    """Where a file's pieces wait to be joined: named after everything that changes them (the
    input file's identity and the settings), so a rerun reuses finished pieces only when they
    are still right."""
    st = src.stat()
    key = f"{src.resolve()}|{st.st_size}|{st.st_mtime_ns}|{cfg!r}".encode()
    return outdir / CHUNK_DIR / f"{out.stem}-{hashlib.sha256(key).hexdigest()[:16]}"


def piece_path(folder: Path, piece: Piece) -> Path:
    return folder / f"{piece.first:08d}-{piece.end:08d}.mov"


def _frames_of(source: VideoSource, piece: Piece) -> Iterator[GrayFrame]:
    """The piece's frames: seek to the key frame at or before it, skip up to it, stop after."""
    if piece.first > 0:
        source.container.seek(piece.start_pts, stream=source.stream, backward=True, any_frame=False)
    for item in source.items():
        if item.pts < piece.start_pts:
            continue
        if piece.end_pts is not None and item.pts >= piece.end_pts:
            return
        yield item


def colorize_piece(
    src: Path,
    out: Path,
    piece: Piece,
    cfg: ColorizeConfig,
    colorizer: Colorizer,
    warn: Callable[[str], None] = print,
) -> VideoSummary:
    """Colorize one piece into `out` (video only), as the single run colorizes those frames."""
    if cfg.deflicker:
        raise ConfigError("--split-shots cannot be used with --deflicker (its correction runs across shots)")
    keep_frame_buffers()
    start = time.perf_counter()
    times = StageTimes()
    with VideoSource(src, carry_streams=False) as source:
        info = source.info
        sink = VideoSink(out, info, cfg.encode, warn=warn)
        sink.plan_streams()
        source.keep_depth = sink.plan.depth > 8

        def colorize(up):
            return colorize_items(
                up,
                colorizer,
                info,
                cfg.batch,
                times,
                cfg.temporal,
                cfg.keyframe_interval,
                first_index=piece.first,
                chroma_shape=sink.plan.chroma_shape(info.width, info.height),
                depth=sink.plan.depth,
            )

        with sink:
            run_pipeline(lambda: timed(_frames_of(source, piece), times, "decode"), colorize, sink.write)
            if sink.frames != piece.end - piece.first:
                raise InputError(
                    f"{src}: frames {piece.first}-{piece.end} gave {sink.frames} frames after seeking "
                    f"(expected {piece.end - piece.first}); colorize it without --split-shots"
                )
    return VideoSummary(sink.frames, time.perf_counter() - start, 0, times, describe(colorizer))


def join_pieces(src: Path, pieces: list[Path], out: Path, plan: ShotPlan, warn: Callable[[str], None] = print) -> int:
    """Mux the pieces' video and the input's other streams (copied once) into `out`, through
    its partial file; -> frames written. Nothing is re-encoded."""
    tmp = partial_path(out)
    opened: list[av.container.InputContainer] = []
    try:
        with VideoSource(src) as source:
            info = source.info
            probe = VideoSink(out, info, EncodeOptions(), warn=warn)  # plans the carried streams only
            if probe.plan_streams():
                raise OutputError(
                    f"{src}: an audio stream must be re-encoded for {out.suffix}; run it without --split-shots"
                )
            carried = [s for s in info.other_streams if probe._plan.get(s.index) == "copy"]
            opened = [av.open(str(p)) for p in pieces]
            with av.open(str(tmp), "w", format=probe.format) as dst:
                video = dst.add_stream_from_template(opened[0].streams.video[0])
                video.time_base = info.time_base
                if plan.rotation:
                    video.set_display_rotation(plan.rotation)
                # the tags a single run copies (sink.VideoSink._open): title, language, timecode...
                dst.metadata.update(info.metadata)
                video.metadata.update(info.video_metadata)
                copies = {s.index: dst.add_stream_from_template(s) for s in carried}
                for s in carried:
                    copies[s.index].metadata.update(user_tags(s.metadata))
                    copies[s.index].disposition = s.disposition
                frames = 0

                def video_packets() -> Iterator[tuple[Fraction, int, av.Packet]]:
                    nonlocal frames
                    last = None
                    for c in opened:
                        for p in c.demux(c.streams.video[0]):
                            if p.size == 0:
                                continue
                            if last is not None and p.dts is not None and p.dts <= last:
                                raise OutputError(f"{src}: the pieces' timestamps overlap; cannot join them")
                            last = p.dts
                            frames += 1
                            yield _when(p), 0, p

                def other_packets() -> Iterator[tuple[Fraction, int, av.Packet]]:
                    for p in source.container.demux(*carried) if carried else ():
                        if p.dts is None and not p.size:  # the demuxer's flush packet
                            continue
                        yield _when(p), 1, p

                for _, kind, p in heapq.merge(video_packets(), other_packets(), key=lambda t: (t[0], t[1])):
                    p.stream = video if kind == 0 else copies[p.stream.index]
                    dst.mux(p)
        if frames != plan.frames:
            raise OutputError(f"{src}: the pieces hold {frames} frames, the input {plan.frames}; not joined")
        os.replace(tmp, out)
        return frames
    finally:
        for c in opened:
            c.close()
        tmp.unlink(missing_ok=True)


def _when(p: av.Packet) -> Fraction:
    t = p.dts if p.dts is not None else (p.pts or 0)
    return t * p.time_base
