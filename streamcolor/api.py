"""The library's entry points: colorize a video file (photos: images.py). The CLI only calls these."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from streamcolor.colorizer import Colorizer
from streamcolor.config import RunConfig
from streamcolor.deflicker import deflicker_items
from streamcolor.engines.registry import create_engine
from streamcolor.errors import ConfigError, InputError, OutputError
from streamcolor.memory import keep_frame_buffers
from streamcolor.model import DEFAULT_MODEL, HINTS_MODEL, load_card
from streamcolor.output_plan import check_output_path
from streamcolor.pipeline import StageTimes, colorize_items, run_pipeline, timed
from streamcolor.sequence import (
    FRAME_CODECS,
    SEQUENCE_RATE_FROM,
    SequenceSink,
    SequenceSource,
    describe_gaps,
    find_frames,
    resume_from,
    sequence_target,
)
from streamcolor.shot_memory import ShotMemory
from streamcolor.sink import VideoSink
from streamcolor.source import GrayFrame, VideoSource
from streamcolor.temporal import MODES as TEMPORAL_MODES


@dataclass(frozen=True)
class ColorizeConfig(RunConfig):
    """Resolved once from flags and the model card; each component gets its own part. The
    fields every run shares are RunConfig's (streamcolor/config.py); model None: DEFAULT_MODEL,
    or HINTS_MODEL when there are hints (the default model takes none)."""

    temporal: str = "bidirectional"  # measured best for files (benchmarks/temporal_quality.py)
    deflicker: bool = False  # steady the luma of old film first (changes the output's luma)
    batch: int = 4
    # recurring shots keep their colours (streamcolor/shot_memory.py); needs a temporal filter
    shot_memory: bool = True

    def __post_init__(self) -> None:
        if self.model is None:
            object.__setattr__(self, "model", HINTS_MODEL if self.hints else DEFAULT_MODEL)
        if self.temporal not in TEMPORAL_MODES:
            raise ConfigError(f"unknown temporal mode '{self.temporal}'; choose one of: {', '.join(TEMPORAL_MODES)}")
        super().__post_init__()
        if self.batch < 1:
            raise ConfigError(f"batch must be at least 1, got {self.batch}")

    def __repr__(self) -> str:
        # the field order of before RunConfig: the repr marks a resumable output with its
        # settings (sequence.resume_from, shots.chunk_folder), so it must not change
        names = (
            "model", "backend", "temporal", "keyframe_interval", "deflicker", "batch",
            "threads", "precision", "encode", "hints", "vividness",
        )  # fmt: skip
        return f"ColorizeConfig({', '.join(f'{n}={getattr(self, n)!r}' for n in names)})"


@dataclass
class Progress:
    frames: int
    total: int  # 0 when unknown
    elapsed: float


@dataclass
class VideoSummary:
    frames: int
    seconds: float
    decode_errors: int
    times: StageTimes
    backend: str
    out: Path | str | None = None  # the file written (OUT, or OUT/IN's name when OUT is a folder), or a pattern
    hints: str | None = None  # what the hints did, one line (HintStats.line)
    rate: str | None = None  # an image sequence's frame rate and where it came from ('24 fps, the default')
    resumed: int | None = None  # a sequence output continued from this frame number
    shots: str | None = None  # what the shot memory did, one line (ShotMemoryStats.line)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def make_colorizer(cfg: ColorizeConfig) -> Colorizer:
    """The engine cfg asks for, wrapped in the Colorizer that suits it: frames stay on the
    GPU with the PyTorch and TensorRT engines, on the CPU with ONNX Runtime."""
    card = load_card(cfg.model)
    if getattr(cfg, "hints", None) and not card.hints:
        raise ConfigError(f"model {Path(cfg.model).name} takes no hints; leave out --model to use the hint model")
    engine = create_engine(cfg.backend, card, cfg.threads, getattr(cfg, "precision", None))
    if hasattr(engine, "run_tensor") and not card.hints:  # hint models: frames on the CPU
        from streamcolor.gpu_colorizer import TorchColorizer

        return TorchColorizer(engine, card, vividness=cfg.vividness)
    return Colorizer(engine, card, vividness=cfg.vividness)


def describe(colorizer: Colorizer) -> str:
    """'onnx (CPUExecutionProvider)', 'torch (cuda:fp16:compiled)'... for the summary line."""
    engine = colorizer.engine
    return f"{engine.name} ({getattr(engine, 'provider', '?')})"


def colorize_video(
    src: str | Path,
    out: str | Path,
    cfg: ColorizeConfig | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    warn: Callable[[str], None] = print,
    colorizer: Colorizer | None = None,
    overwrite: bool = False,
    stream: int | None = None,
    fps: Fraction | None = None,
    start_number: int | None = None,
) -> VideoSummary:
    """Colorize one video file (or URL) into OUT, keeping timestamps, audio and metadata.
    IN and OUT may also be image sequences (streamcolor/sequence.py): a printf pattern
    ('scan/%06d.dpx') or a folder of numbered frames.

    overwrite: replace an existing OUT (refused otherwise). stream: the input stream index
    to colorize (default: the best video stream, as FFmpeg chooses it). fps: a sequence's
    frame rate (default: a DPX header's, else 24). start_number: a sequence's first number."""
    cfg = cfg or ColorizeConfig()
    is_url = "://" in str(src)
    frames = find_frames(src, start_number)
    if frames is None and Path(src).is_dir() and not is_url:
        raise InputError(
            f"input is a folder with no numbered frames ({', '.join(sorted(FRAME_CODECS))}): {src}; "
            f"to colorize the videos in it, use: streamcolor batch {src} OUTDIR"
        )
    if frames is None and (fps is not None or start_number is not None):
        raise ConfigError("--fps and --start-number are for image sequences (a pattern such as scan/%06d.dpx)")
    target = sequence_target(out, frames, src)
    resume = None
    if target is None:
        out = Path(out)
        if out.is_dir():  # cp's rule: into an existing folder, under the input's name
            if is_url or frames is not None:
                raise OutputError(f"output is a folder: {out} (give an output file name)")
            out = out / Path(src).name
        check_output_path(out, [] if is_url or frames is not None else [Path(src)], overwrite)
    colorizer = colorizer or make_colorizer(cfg)
    keep_frame_buffers()
    start = time.perf_counter()
    times = StageTimes()
    gpu = hasattr(colorizer.engine, "run_tensor")  # a GPU engine: NVDEC/NVENC where the GPU has them
    marker = {"input": str(Path(src).resolve()) if not is_url else str(src), "settings": repr(cfg)}
    if target is not None:
        resume = resume_from(target, frames.numbers if frames else None, marker, overwrite)
    if frames is not None:
        source_cm = SequenceSource(frames, fps, start_at=resume)
    else:
        source_cm = VideoSource(src, hw_decode=gpu, stream=stream)
    with source_cm as source:
        info = source.info
        encode = dataclasses.replace(cfg.encode, hw_encode=gpu) if gpu else cfg.encode
        if target is not None:
            first = frames.numbers[0] if frames else 1
            # a sequence's frames keep their numbers; a video's are numbered from 1 (FFmpeg's)
            number_of = (lambda f: first + f.pts) if frames else (lambda f: first + f.index)
            sink = SequenceSink(target, info, number_of, marker, warn=warn)
            out = target.pattern
        else:
            sink = VideoSink(out, info, encode, warn=warn)
        reencode = sink.plan_streams()
        source.keep_depth = sink.plan.depth > 8  # frames carry their deep luma for the sink
        if frames is not None:
            gaps = describe_gaps(frames)
            if gaps:
                warn(gaps)
        skip_before = resume if resume is not None and frames is None else None

        def decode():
            items = timed(source.items(reencode), times, "decode")
            if skip_before is not None:  # a video into a resumed sequence: its written frames skipped
                items = (i for i in items if not isinstance(i, GrayFrame) or number_of(i) >= skip_before)
            return deflicker_items(items) if cfg.deflicker else items

        memory = ShotMemory() if cfg.shot_memory and cfg.temporal != "off" else None
        tracker = None
        if cfg.hints:
            from streamcolor.hints.tracker import HintTracker

            tracker = HintTracker(cfg.hints, colorizer, info.width, info.height, info.full_range, warn=warn)
            if cfg.temporal == "bidirectional" and not is_url:  # hints also reach back to their shot's start
                from streamcolor.hints.backward import backward_positions

                rate = float(info.average_rate or 25)
                again_cm = (
                    SequenceSource(frames, fps, start_at=resume)
                    if frames is not None
                    else VideoSource(src, stream=stream, carry_streams=False)
                )
                with again_cm as again:
                    tracker.carry_back(
                        backward_positions(
                            (f for f in again.items() if hasattr(f, "y8")),
                            lambda f: float(f.pts * info.time_base) if f.pts is not None else f.index / rate,
                            cfg.hints,
                            colorizer,
                            info.full_range,
                        )
                    )

        def colorize(up):
            chroma_shape = sink.plan.chroma_shape(info.width, info.height)
            return colorize_items(
                up,
                colorizer,
                info,
                cfg.batch,
                times,
                cfg.temporal,
                cfg.keyframe_interval,
                tracker=tracker,
                chroma_shape=chroma_shape,
                depth=sink.plan.depth,
                shot_memory=memory,
            )

        def write(item) -> None:
            t = time.perf_counter()
            sink.write(item)
            times.encode += time.perf_counter() - t
            if on_progress and sink.frames and hasattr(item, "y8"):
                on_progress(Progress(sink.frames, info.frames_estimate, time.perf_counter() - start))

        with sink:
            run_pipeline(decode, colorize, write)
            if sink.frames == 0:
                raise InputError(f"{src} contains no decodable video frames")
        if source.decode_errors and frames is not None:
            warn(f"skipped {source.decode_errors} frame file(s) that could not be read (their time kept as a gap)")
        elif source.decode_errors:
            warn(f"skipped {source.decode_errors} damaged packet(s) that could not be decoded")
        short = early_end(source.times.span * info.time_base, info.stated_duration_s, info.average_rate)
        if short:
            warn(f"the input ended early: {sink.frames} frames, {short} (damaged or truncated?)")
    seconds = time.perf_counter() - start
    hints_line = None
    if tracker is not None:
        if tracker.pending:
            first = tracker.pending[0]
            when = f"frame {first.frame}" if first.frame is not None else f"{first.time:g} s"
            warn(
                f"{len(tracker.pending)} hint(s) never started: the input ended first "
                f"(e.g. the hint at line {first.line}, at {when})"
            )
        hints_line = tracker.stats.line(tracker.total_hints, len(tracker.pending), len(tracker.references))
    rate = None
    if frames is not None:
        rate = f"{float(info.average_rate):g} fps{SEQUENCE_RATE_FROM[source.rate_from]}"
    summary = VideoSummary(
        sink.frames, seconds, source.decode_errors, times, describe(colorizer), out, hints_line, rate, resume
    )
    if memory is not None and memory.stats.matched:
        summary.shots = memory.stats.line()
    return summary


def early_end(decoded_s: float, stated_s: float | None, rate: float | None) -> str | None:
    """'1.8 s of the 3.0 s its header states' when the frames decoded cover clearly less time
    than the container says the video stream lasts (more than 5 % and a frame short)."""
    if not stated_s:
        return None
    frame = 1 / float(rate) if rate else 0.0
    if float(decoded_s) >= 0.95 * stated_s - frame:
        return None
    return f"{float(decoded_s):.1f} s of the {stated_s:.1f} s the container states"
