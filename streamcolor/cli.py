"""The `streamcolor` command: a thin edge that parses flags, calls the library, and turns
typed errors into one line on stderr and an exit code (fastapi-cli's `cli.py` pattern)."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from enum import Enum
from fractions import Fraction
from pathlib import Path
from typing import Annotated

import typer

from streamcolor import __version__
from streamcolor.api import ColorizeConfig, Progress, colorize_images, colorize_video
from streamcolor.errors import ConfigError, StreamcolorError
from streamcolor.live import (
    LiveConfig,
    LiveControls,
    SourceSpec,
    camera_spec,
    check_live_outputs,
    format_summary,
    run_live,
)
from streamcolor.model import DEFAULT_MODEL
from streamcolor.sink import EncodeOptions, check_output_path

app = typer.Typer(
    name="streamcolor",
    help="Colorize black-and-white video and photos.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


class Temporal(str, Enum):
    off = "off"
    causal = "causal"
    bidirectional = "bidirectional"


class Backend(str, Enum):
    auto = "auto"
    onnx = "onnx"
    torch = "torch"
    tensorrt = "tensorrt"


class Codec(str, Enum):
    auto = "auto"
    h264 = "h264"
    hevc = "hevc"
    ffv1 = "ffv1"
    prores = "prores"
    vp9 = "vp9"
    av1 = "av1"
    gif = "gif"


class Preset(str, Enum):
    ultrafast = "ultrafast"
    superfast = "superfast"
    veryfast = "veryfast"
    faster = "faster"
    fast = "fast"
    medium = "medium"
    slow = "slow"
    slower = "slower"
    veryslow = "veryslow"


def _err(msg: str) -> None:
    typer.echo(f"streamcolor: {msg}", err=True)


def _warn(msg: str) -> None:
    typer.echo(f"streamcolor: warning: {msg}", err=True)


class ProgressBar:
    """One line on a terminal, redrawn at most 5 times a second: frames, fps, ETA."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.last = 0.0

    def __call__(self, p: Progress) -> None:
        now = time.monotonic()
        if not self.enabled or now - self.last < 0.2:
            return
        self.last = now
        fps = p.frames / p.elapsed if p.elapsed > 0 else 0.0
        if p.total and p.frames <= p.total:
            width = 30
            done = int(width * p.frames / p.total)
            eta = (p.total - p.frames) / fps if fps > 0 else 0
            line = (
                f"[{'#' * done}{'.' * (width - done)}] {p.frames}/{p.total} "
                f"{100 * p.frames / p.total:3.0f}%  {fps:5.1f} fps  ETA {int(eta) // 60}:{int(eta) % 60:02d}"
            )
        else:
            line = f"{p.frames} frames  {fps:5.1f} fps"
        sys.stderr.write("\r" + line + "\033[K")
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled and self.last:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()
            self.last = 0.0


class Precision(str, Enum):
    fp16 = "fp16"
    fp32 = "fp32"


ModelOpt = Annotated[Path, typer.Option(help="ONNX model with its .json card beside it.")]
HintModelOpt = Annotated[
    Path | None,
    typer.Option(
        help="ONNX model with its .json card beside it [default: the shipped student; with --hints or "
        "--reference the shipped hint model].",
        show_default=False,
    ),
]
BackendOpt = Annotated[
    Backend,
    typer.Option(
        help="Inference engine. auto: TensorRT when installed with an NVIDIA GPU, else PyTorch on CUDA, "
        "else ONNX Runtime (CPU)."
    ),
]
PrecisionOpt = Annotated[
    Precision | None, typer.Option(help="GPU engines: fp16 (default) or fp32. ONNX Runtime runs fp32.")
]
ThreadsOpt = Annotated[int, typer.Option(help="Inference threads (0: all cores).", min=0)]
VividnessOpt = Annotated[
    float | None,
    typer.Option(
        help="Colour strength: a gain on the predicted chroma a*b* (0 gray, 1 as trained, above 1 more vivid) "
        "[default: the model card's, chosen on validation photos].",
        min=0.0,
        max=3.0,
        show_default=False,
    ),
]
OverwriteOpt = Annotated[bool, typer.Option("--overwrite", "-y", help="Replace OUT if it exists (refused otherwise).")]
HintsOpt = Annotated[
    Path | None,
    typer.Option(help="Colour hints file (TOML: [[hint]] time, at, color, until; [[reference]] path, from, to)."),
]
ReferenceOpt = Annotated[
    list[Path] | None,
    typer.Option(help="A colour photo whose colours are matched onto the input (repeat for several)."),
]


def _writes_sequence(src: str, out: str) -> bool:
    """Whether `video` writes an image sequence: OUT a frame pattern, or a folder for a
    sequence input (api.colorize_video decides the same with sequence.sequence_target)."""
    from streamcolor.sequence import is_pattern

    if is_pattern(out):
        return True
    into_folder = out.endswith(("/", os.sep)) or Path(out).is_dir()
    return into_folder and "://" not in src and (is_pattern(src) or Path(src).is_dir())


def _frame_rate(text: str | None) -> Fraction | None:
    """'24', '23.976', '24000/1001' -> a positive Fraction (None: not given)."""
    if text is None:
        return None
    try:
        rate = Fraction(text).limit_denominator(1001)
    except (ValueError, ZeroDivisionError):
        raise ConfigError(f"--fps must be a number or a fraction such as 24000/1001, got '{text}'") from None
    if rate <= 0:
        raise ConfigError(f"--fps must be positive, got '{text}'")
    return rate


def _hint_file(hints: Path | None, reference: list[Path] | None):
    """--hints and --reference -> one HintFile (None when neither is given)."""
    from streamcolor.hints.file import HintFile, Reference, load_hints

    if hints is None and not reference:
        return None
    hf = load_hints(hints) if hints is not None else HintFile()
    refs = []
    for r in reference or []:
        if not r.is_file():
            raise ConfigError(f"reference photo not found: {r}")
        refs.append(Reference(r))
    return HintFile(hf.hints, hf.references + tuple(refs))


@app.command()
def video(
    src: Annotated[
        str,
        typer.Argument(
            metavar="IN", help="Input video file or URL, an image sequence (scan/%06d.dpx) or a folder of frames."
        ),
    ],
    out: Annotated[
        str,
        typer.Argument(
            metavar="OUT",
            help="Output video file (.mp4 .m4v .mov .mkv .webm .avi .ts .flv .gif), a folder, "
            "or an image sequence (out/%04d.tif, .dpx, .png).",
        ),
    ],
    model: HintModelOpt = None,
    backend: BackendOpt = Backend.auto,
    temporal: Annotated[
        Temporal, typer.Option(help="Flicker filter: bidirectional (uses 12 frames of look-ahead), causal, off.")
    ] = Temporal.bidirectional,
    keyframe_interval: Annotated[
        int | None,
        typer.Option(
            help="Run the network on every n-th frame and carry colour between [default: 2; 1 with --temporal off].",
            min=1,
        ),
    ] = None,
    deflicker: Annotated[
        bool, typer.Option("--deflicker", help="Steady the brightness pumping of old film first (changes the luma).")
    ] = False,
    codec: Annotated[
        Codec,
        typer.Option(
            help="Output video codec; auto: the container's (h264; vp9 for .webm, gif for .gif), "
            "at a 10/12/16-bit input's depth where it holds it."
        ),
    ] = Codec.auto,
    crf: Annotated[int, typer.Option(help="Quality for h264/hevc (lower is better).", min=0, max=51)] = 18,
    preset: Annotated[Preset, typer.Option(help="Encoder speed preset for h264/hevc.")] = Preset.veryfast,
    batch: Annotated[int, typer.Option(help="Frames per inference batch.", min=1, max=64)] = 4,
    threads: ThreadsOpt = 0,
    precision: PrecisionOpt = None,
    vividness: VividnessOpt = None,
    stream: Annotated[
        int | None, typer.Option(help="Input stream index to colorize [default: the best video stream].", min=0)
    ] = None,
    fps: Annotated[
        str | None,
        typer.Option(help="An image sequence's frame rate (24, 25, 24000/1001) [default: a DPX header's, else 24]."),
    ] = None,
    start_number: Annotated[
        int | None, typer.Option(help="An image sequence's first frame number [default: the lowest found].", min=0)
    ] = None,
    overwrite: OverwriteOpt = False,
    hints: HintsOpt = None,
    reference: ReferenceOpt = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar, no summary.")] = False,
) -> None:
    """Colorize a video: keeps frame count, timestamps, audio, subtitles and colour metadata."""
    bar = ProgressBar(enabled=not quiet and sys.stderr.isatty())
    try:
        cfg = ColorizeConfig(
            hints=_hint_file(hints, reference),
            model=model,
            backend=backend.value,
            temporal=temporal.value,
            keyframe_interval=keyframe_interval,
            deflicker=deflicker,
            batch=batch,
            threads=threads or None,
            precision=precision.value if precision else None,
            vividness=vividness,
            encode=EncodeOptions(codec=codec.value, crf=crf, preset=preset.value),
        )
        summary = colorize_video(
            src,
            out,
            cfg,
            on_progress=bar,
            warn=_warn,
            overwrite=overwrite,
            stream=stream,
            fps=_frame_rate(fps),
            start_number=start_number,
        )
    except StreamcolorError as e:
        bar.close()
        _err(str(e))
        raise typer.Exit(e.exit_code) from None
    except (Interrupted, KeyboardInterrupt) as e:
        if not _writes_sequence(src, out):
            raise  # run(): "interrupted; unfinished output deleted"
        bar.close()
        term = getattr(e, "signum", None) == signal.SIGTERM
        _err(
            f"{'terminated' if term else 'interrupted'}; the finished frames are kept and the one under way "
            "deleted: rerun the same command to continue"
        )
        raise typer.Exit(128 + (signal.SIGTERM if term else signal.SIGINT)) from None
    finally:  # Ctrl-C, SIGTERM, OS errors: the next line must not start after the bar's "ETA 0:03"
        bar.close()
    if not quiet:
        sequence = f"; image sequence at {summary.rate}" if summary.rate else ""
        resumed = f"; continued from frame {summary.resumed}" if summary.resumed is not None else ""
        typer.echo(
            f"colorized {summary.frames} frames in {summary.seconds:.1f} s ({summary.fps:.1f} fps, "
            f"{summary.backend}{sequence}{resumed}) -> {summary.out or out}",
            err=True,
        )
        if summary.hints:
            typer.echo(summary.hints, err=True)


@app.command()
def image(
    src: Annotated[str, typer.Argument(metavar="IN", help="An image file or URL, or a folder of images.")],
    out: Annotated[
        str, typer.Argument(metavar="OUT", help="Output file, a folder to write into, or a folder for a folder.")
    ],
    model: HintModelOpt = None,
    backend: BackendOpt = Backend.auto,
    threads: ThreadsOpt = 0,
    precision: PrecisionOpt = None,
    vividness: VividnessOpt = None,
    overwrite: OverwriteOpt = False,
    hints: HintsOpt = None,
    reference: ReferenceOpt = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
) -> None:
    """Colorize photos: one file, or every image in a folder (names and formats kept)."""
    try:
        cfg = ColorizeConfig(
            hints=_hint_file(hints, reference),
            model=model,
            backend=backend.value,
            threads=threads or None,
            precision=precision.value if precision else None,
            vividness=vividness,
        )
        written = colorize_images(src, out, cfg, warn=_warn, overwrite=overwrite)
    except StreamcolorError as e:
        _err(str(e))
        raise typer.Exit(e.exit_code) from None
    if not quiet:
        typer.echo(f"colorized {len(written)} image(s) -> {out}", err=True)


class Container(str, Enum):
    mp4 = "mp4"
    mkv = "mkv"
    mov = "mov"
    avi = "avi"


@app.command()
def batch(
    paths: Annotated[
        list[str],
        typer.Argument(
            metavar="IN... OUTDIR",
            help="Files, folders (recursive), quoted globs ('reels/**/*.mov'), list files (@list.txt), then OUTDIR.",
        ),
    ],
    container: Annotated[
        Container | None, typer.Option(help="Output container [default: mp4; mkv for ffv1, mov for prores].")
    ] = None,
    image_only: Annotated[bool, typer.Option("--image", help="Photos only (folders of photos).")] = False,
    workers: Annotated[
        int | None,
        typer.Option(
            help="Local worker processes, each with its own engine [default: one per core, up to 8; 1 on a GPU].", min=1
        ),
    ] = None,
    gpus: Annotated[
        str | None, typer.Option(help="GPU ids for the local workers, one each (e.g. 0,1): GPU backends.")
    ] = None,
    ray: Annotated[
        str | None,
        typer.Option(help="Run each file as a task on a Ray cluster: auto, an address (host:6379), or local."),
    ] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", "-y", help="Redo outputs that already exist.")] = False,
    split_shots: Annotated[
        bool,
        typer.Option("--split-shots", help="Cut each video at scene cuts; colorize the pieces at once; join them."),
    ] = False,
    model: ModelOpt = DEFAULT_MODEL,
    backend: BackendOpt = Backend.auto,
    temporal: Annotated[
        Temporal, typer.Option(help="Flicker filter: bidirectional, causal, off.")
    ] = Temporal.bidirectional,
    keyframe_interval: Annotated[
        int | None, typer.Option(help="Run the network on every n-th frame [default: 2; 1 with --temporal off].", min=1)
    ] = None,
    deflicker: Annotated[bool, typer.Option("--deflicker", help="Steady the brightness pumping first.")] = False,
    codec: Annotated[Codec, typer.Option(help="Output video codec.")] = Codec.h264,
    crf: Annotated[int, typer.Option(help="Quality for h264/hevc (lower is better).", min=0, max=51)] = 18,
    preset: Annotated[Preset, typer.Option(help="Encoder speed preset for h264/hevc.")] = Preset.veryfast,
    batch_frames: Annotated[int, typer.Option("--batch", help="Frames per inference batch.", min=1, max=64)] = 4,
    threads: Annotated[
        int, typer.Option(help="Inference threads per worker (0: the cores shared out; 1 per Ray task).", min=0)
    ] = 0,
    precision: PrecisionOpt = None,
    vividness: VividnessOpt = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress, no summary (failures still listed).")
    ] = False,
) -> None:
    """Colorize many videos and photos into OUTDIR, mirroring their paths; rerun to resume."""
    from streamcolor.batch import BatchConfig, BatchInterrupted, run_batch

    if len(paths) < 2:
        _err("give at least one input and the output folder: streamcolor batch IN... OUTDIR")
        raise typer.Exit(2)
    *inputs, outdir = paths
    ext = container.value if container else {"ffv1": "mkv", "prores": "mov"}.get(codec.value, "mp4")
    progress = _BatchProgress(enabled=not quiet and sys.stderr.isatty())
    try:
        cfg = BatchConfig(
            colorize=ColorizeConfig(
                model=model,
                backend=backend.value,
                temporal=temporal.value,
                keyframe_interval=keyframe_interval,
                deflicker=deflicker,
                batch=batch_frames,
                threads=threads or None,
                precision=precision.value if precision else None,
                vividness=vividness,
                encode=EncodeOptions(codec=codec.value, crf=crf, preset=preset.value),
            ),
            container=ext,
            kind="image" if image_only else "auto",
            overwrite=overwrite,
            workers=workers,
            gpus=tuple(g.strip() for g in gpus.split(",") if g.strip()) if gpus else (),
            ray=ray,
            split_shots=split_shots,
        )
        with progress, _signals_as_keyboard_interrupt() as received:
            summary = run_batch(inputs, Path(outdir), cfg, on_progress=progress.update, on_plan=progress.plan)
    except BatchInterrupted as e:
        _batch_summary(e.summary, Path(outdir), quiet)
        what = "terminated" if received and received[-1] == signal.SIGTERM else "interrupted"
        _err(f"{what}: {e.summary.not_run} file(s) not finished; rerun the same command to resume")
        raise typer.Exit(128 + (received[-1] if received else signal.SIGINT)) from None
    except StreamcolorError as e:
        _err(str(e))
        raise typer.Exit(e.exit_code) from None
    _batch_summary(summary, Path(outdir), quiet)
    if summary.failed:
        raise typer.Exit(1)


class _signals_as_keyboard_interrupt:
    """SIGINT and SIGTERM as KeyboardInterrupt while a batch runs: the batch library stops its
    workers or Ray tasks on it and returns what finished (run() would otherwise end the command
    at once with its own exception). Yields the list of signals received."""

    def __enter__(self) -> list[int]:
        self.received: list[int] = []
        if threading.current_thread() is not threading.main_thread():
            self.previous = {}
            return self.received

        def interrupt(signum, frame) -> None:
            self.received.append(signum)
            raise KeyboardInterrupt

        self.previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
        return self.received

    def __exit__(self, *exc) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


class _BatchProgress:
    """Files and frames done, frame rate and ETA on a terminal (rich's progress bar)."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.bar = None

    def __enter__(self):
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.fields[frames]}  {task.fields[fps]}"),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self.bar.start()
            self.task = self.bar.add_task("batch", total=None, frames="", fps="")
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()

    def plan(self, to_run: int, skipped: int) -> None:
        if self.bar is not None and skipped:
            self.bar.console.print(f"skipping {skipped} finished output(s) (--overwrite redoes them)")

    def update(self, p) -> None:
        if self.bar is None:
            return
        fps = p.frames_done / p.elapsed if p.elapsed > 0 else 0.0
        self.bar.update(
            self.task,
            description=f"{p.files_done}/{p.files_total} files",
            completed=p.frames_done,
            total=p.frames_total or None,
            frames=f"{p.frames_done}/{p.frames_total} frames",
            fps=f"{fps:.1f} fps",
        )


def _batch_summary(summary, outdir: Path, quiet: bool) -> None:
    """done / skipped / failed, then each failure with its one-line reason (always shown)."""
    from streamcolor.batch import RECORD_NAME

    if not quiet:
        fps = summary.frames / summary.seconds if summary.seconds > 0 else 0.0
        typer.echo(
            f"batch: {len(summary.done)} done, {len(summary.skipped)} skipped, {len(summary.failed)} failed "
            f"in {summary.seconds:.1f} s ({summary.frames} frames, {fps:.1f} fps); record: {outdir / RECORD_NAME}",
            err=True,
        )
    for r in summary.failed:
        _err(f"failed: {r.input}: {r.error}")


class LiveTemporal(str, Enum):
    causal = "causal"
    off = "off"


LiveTemporalOpt = Annotated[
    LiveTemporal, typer.Option(help="Flicker filter (causal: reads no future frame, adds no delay).")
]
HostOpt = Annotated[str, typer.Option(help="Preview address (loopback unless --allow-remote).")]
PortOpt = Annotated[int, typer.Option(help="Preview port (0: any free port).", min=0, max=65535)]
AllowRemoteOpt = Annotated[
    bool, typer.Option("--allow-remote", help="Let the preview listen beyond this machine (--host 0.0.0.0).")
]
RecordOpt = Annotated[Path | None, typer.Option(help="Also record the colorized video to this file.")]
LiveHintsOpt = Annotated[
    Path | None,
    typer.Option(
        "--hints",
        help="Colour hints file to apply from the start (one saved from the preview replays that session).",
    ),
]
SaveHintsOpt = Annotated[
    Path | None,
    typer.Option(help="At the end, write the session's hints (--hints and those clicked on the preview) here."),
]


def _live(
    spec: SourceSpec,
    out: str | None,
    cfg: LiveConfig,
    record: Path | None,
    preview: bool,
    host: str,
    port: int,
    allow_remote: bool,
    quiet: bool,
    overwrite: bool = False,
    save_hints: Path | None = None,
) -> None:
    """Run a live session with or without the preview page; print the latency table at the end
    and write the session's hints to save_hints."""
    from streamcolor.preview import PreviewServer

    def started(seconds: float) -> None:
        if not quiet:
            _err(f"first frame out {seconds:.1f} s after start")

    controls = None
    try:
        check_live_outputs(spec, out, record, overwrite, save_hints)
        controls = LiveControls(cfg.temporal, cfg.hints)
        if preview:
            with PreviewServer(host, port, allow_remote, controls) as server:
                _err(f"preview: {server.url}  (Ctrl-C stops)")
                summary = run_live(
                    spec,
                    out,
                    cfg,
                    record,
                    server,
                    warn=_warn,
                    controls=controls,
                    on_first_frame=started,
                    overwrite=overwrite,
                )
        else:
            if not quiet:
                _err("colorizing live (Ctrl-C stops)")
            summary = run_live(
                spec, out, cfg, record, warn=_warn, controls=controls, on_first_frame=started, overwrite=overwrite
            )
    except KeyboardInterrupt as e:  # Ctrl-C or SIGTERM while waiting for an input that never came
        signum = e.args[0] if e.args and isinstance(e.args[0], int) else signal.SIGINT
        what = "terminated" if signum == signal.SIGTERM else "interrupted"
        _err(f"{what} while waiting for {spec.url}; nothing was written")
        raise typer.Exit(128 + signum) from None
    except StreamcolorError as e:
        _err(str(e))
        if save_hints is not None and controls is not None and controls.hints.given:
            _save_live_hints(save_hints, controls, quiet)  # the hints given before the failure are kept
        raise typer.Exit(e.exit_code) from None
    if not quiet:
        typer.echo(format_summary(summary), err=True)
    if save_hints is not None:
        try:
            _save_live_hints(save_hints, controls, quiet)
        except StreamcolorError as e:
            _err(str(e))
            raise typer.Exit(e.exit_code) from None
    if summary.signum:  # stopped by Ctrl-C or SIGTERM: 130 / 143, as `video` (the recording is finished)
        raise typer.Exit(128 + summary.signum)


def _save_live_hints(path: Path, controls: LiveControls, quiet: bool) -> None:
    """The session's hints as a hints file (the preview's 'save hints' writes the same)."""
    from streamcolor.errors import OutputError
    from streamcolor.hints.file import dump_hints

    session = controls.hints.session()
    try:
        path.write_text(dump_hints(session), encoding="utf-8")
    except OSError as e:
        raise OutputError(f"cannot write the hints to {path}: {e.strerror or e}") from None
    if not quiet:
        _err(f"hints saved: {path} ({len(session.hints)} hint(s))")


@app.command()
def stream(
    src: Annotated[
        str, typer.Argument(metavar="IN", help="Live input: rtsp://, http(s)://, udp://, srt://, rtmp://, or a file.")
    ],
    out: Annotated[
        str | None,
        typer.Argument(metavar="[OUT]", help="udp:// (MPEG-TS), srt://, rtmp://, an .m3u8 playlist (HLS), or a file."),
    ] = None,
    realtime: Annotated[bool, typer.Option("--realtime", help="Play a file input at its own pace (as live).")] = False,
    preview: Annotated[bool, typer.Option("--preview", help="Serve the live preview page.")] = False,
    host: HostOpt = "127.0.0.1",
    port: PortOpt = 8000,
    allow_remote: AllowRemoteOpt = False,
    record: RecordOpt = None,
    hints: LiveHintsOpt = None,
    save_hints: SaveHintsOpt = None,
    model: ModelOpt = DEFAULT_MODEL,
    backend: BackendOpt = Backend.auto,
    temporal: LiveTemporalOpt = LiveTemporal.causal,
    keyframe_interval: Annotated[
        int, typer.Option(help="Run the network on every n-th frame, carry colour between.", min=1)
    ] = 2,
    crf: Annotated[int, typer.Option(help="H.264 quality (lower is better).", min=0, max=51)] = 23,
    preset: Annotated[Preset, typer.Option(help="H.264 speed preset.")] = Preset.veryfast,
    gop: Annotated[float, typer.Option(help="Seconds between key frames in the output.", min=0.1)] = 1.0,
    read_timeout: Annotated[
        float, typer.Option(help="Seconds without data before the input counts as lost (then reconnect).", min=0.1)
    ] = 2.0,
    threads: ThreadsOpt = 0,
    precision: PrecisionOpt = None,
    vividness: VividnessOpt = None,
    overwrite: OverwriteOpt = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No summary at the end.")] = False,
) -> None:
    """Colorize a live stream with low delay: drops the oldest frames rather than fall behind, reconnects."""
    if out is None and not preview and record is None:
        _err("give OUT, --record or --preview (or several)")
        raise typer.Exit(2)
    try:
        cfg = LiveConfig(
            model=model,
            backend=backend.value,
            threads=threads or None,
            precision=precision.value if precision else None,
            vividness=vividness,
            temporal=temporal.value,
            keyframe_interval=keyframe_interval,
            encode=EncodeOptions(crf=crf, preset=preset.value, tune="zerolatency"),
            gop_seconds=gop,
            read_timeout=read_timeout,
            hints=_hint_file(hints, None),
        )
    except StreamcolorError as e:
        _err(str(e))
        raise typer.Exit(e.exit_code) from None
    spec = SourceSpec(src, realtime=realtime)
    _live(spec, out, cfg, record, preview, host, port, allow_remote, quiet, overwrite, save_hints)


@app.command()
def webcam(
    device: Annotated[
        str | None, typer.Argument(help="Camera index or path (/dev/video0); default: the first camera.")
    ] = None,
    size: Annotated[str | None, typer.Option(help="Capture size, e.g. 640x480 (default: the camera's).")] = None,
    fps: Annotated[int | None, typer.Option(help="Capture frame rate (default: the camera's).", min=1)] = None,
    host: HostOpt = "127.0.0.1",
    port: PortOpt = 8000,
    allow_remote: AllowRemoteOpt = False,
    record: RecordOpt = None,
    hints: LiveHintsOpt = None,
    save_hints: SaveHintsOpt = None,
    model: ModelOpt = DEFAULT_MODEL,
    backend: BackendOpt = Backend.auto,
    temporal: LiveTemporalOpt = LiveTemporal.causal,
    threads: ThreadsOpt = 0,
    precision: PrecisionOpt = None,
    vividness: VividnessOpt = None,
    overwrite: OverwriteOpt = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No summary at the end.")] = False,
) -> None:
    """Colorize a camera live, with a preview page (input and output side by side) in your browser."""
    try:
        # before looking for the camera: the refusals cost the user nothing
        for target in (record, save_hints):
            if target is not None:
                check_output_path(target, [], overwrite)
        hint_file = _hint_file(hints, None)
        spec = camera_spec(device, size, fps)
        cfg = LiveConfig(
            model=model,
            backend=backend.value,
            threads=threads or None,
            precision=precision.value if precision else None,
            vividness=vividness,
            temporal=temporal.value,
            hints=hint_file,
        )
    except StreamcolorError as e:
        _err(str(e))
        raise typer.Exit(e.exit_code) from None
    _live(spec, None, cfg, record, True, host, port, allow_remote, quiet, overwrite, save_hints)


@app.command()
def studio(
    film: Annotated[Path, typer.Argument(metavar="FILM", help="The video to colour.")],
    hints: Annotated[
        Path | None,
        typer.Option(help="The hints file to edit, saved on every change [default: FILM.hints.toml beside FILM]."),
    ] = None,
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0: any free one).", min=0, max=65535)] = 8000,
    threads: ThreadsOpt = 0,
    browser: Annotated[
        bool | None,
        typer.Option(
            "--browser/--no-browser", help="Open the page [default: when run from a terminal].", show_default=False
        ),
    ] = None,
) -> None:
    """Colour a film shot by shot in the browser (127.0.0.1 only), see each hint land, then render."""
    from streamcolor.studio import Studio, StudioServer

    try:
        with Studio(film, hints, threads or None) as st, StudioServer(st, port) as server:
            _err(f"studio: {server.url}  (hints saved to {st.doc.path} on every change; Ctrl-C stops)")
            if browser or (browser is None and sys.stdout.isatty() and sys.stderr.isatty()):
                import webbrowser

                webbrowser.open(server.url)
            while True:  # the server runs in its own thread; Ctrl-C or SIGTERM ends this
                time.sleep(3600)
    except StreamcolorError as e:
        _err(str(e))
        raise typer.Exit(e.exit_code) from None


@app.command()
def bench(
    backend: BackendOpt = Backend.auto,
    precision: PrecisionOpt = None,
    threads: ThreadsOpt = 0,
    frames: Annotated[int, typer.Option(help="Frames per size in the end-to-end runs.", min=8, max=1000)] = 48,
) -> None:
    """Measure speed on this machine in under a minute: model only, then end to end at 480p/720p/1080p."""
    from streamcolor.bench import run_bench

    try:
        cfg = ColorizeConfig(
            backend=backend.value, threads=threads or None, precision=precision.value if precision else None
        )
        run_bench(cfg, frames=frames, print_line=typer.echo)
    except StreamcolorError as e:
        _err(str(e))
        raise typer.Exit(e.exit_code) from None


engines_app = typer.Typer(help="Build and list cached TensorRT engines.", no_args_is_help=True)
app.add_typer(engines_app, name="engines")
EngineDirOpt = Annotated[
    Path | None,
    typer.Option("--dir", help="Engine cache ($STREAMCOLOR_ENGINE_DIR, ./engines, or ~/.cache/streamcolor/engines)."),
]


def _size(text: str, what: str) -> tuple[int, int]:
    """'1920x1080' -> (height, width)."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise typer.BadParameter(f"{what} must look like 1920x1080, got '{text}'") from None
    if w < 1 or h < 1:
        raise typer.BadParameter(f"{what} must be positive, got '{text}'")
    return h, w


@engines_app.command("build")
def engines_build(
    model: ModelOpt = DEFAULT_MODEL,
    precision: Annotated[Precision, typer.Option(help="Engine precision.")] = Precision.fp16,
    batch: Annotated[int, typer.Option(help="Largest batch the engine runs.", min=1, max=64)] = 4,
    size: Annotated[str, typer.Option(help="Video frame size the engine is for (WxH).")] = "1920x1080",
    input_size: Annotated[
        str | None, typer.Option(help="Network input size (WxH) instead of --size (the rebuild commands use it).")
    ] = None,
    directory: EngineDirOpt = None,
) -> None:
    """Build a TensorRT engine ahead of time (the first video run would otherwise build it)."""
    from streamcolor.engines.cache import default_dir
    from streamcolor.engines.tensorrt_engine import build_engine, engine_spec
    from streamcolor.model import load_card

    try:
        card = load_card(model)
        hw = _size(input_size, "--input-size") if input_size else card.input_size(*_size(size, "--size"))
        spec = engine_spec(card, hw, batch, precision.value)
        path = build_engine(card, spec, directory or default_dir(), log=lambda m: _err(m))
    except StreamcolorError as e:
        _err(str(e))
        raise typer.Exit(e.exit_code) from None
    typer.echo(str(path))


@engines_app.command("list")
def engines_list(directory: EngineDirOpt = None) -> None:
    """Show the cached engines and whether each still matches its model file."""
    from streamcolor.engines.cache import default_dir, list_engines, weights_sha256

    folder = directory or default_dir()
    rows = list_engines(folder)
    typer.echo(f"engines in {folder}: {len(rows)}")
    models = {p.stem: p for p in DEFAULT_MODEL.parent.glob("*.onnx")}
    for plan, spec in rows:
        if spec is None:
            typer.echo(f"  {plan.name}  BROKEN (no valid .json beside it: delete and rebuild)")
            continue
        h, w = spec.input_hw
        model = models.get(spec.model_name)
        state = "ok"
        if model is not None and weights_sha256(model) != spec.model_sha256:
            state = "STALE (the model file changed: rebuild)"
        typer.echo(
            f"  {plan.name}  {spec.model_name} {w}x{h} batch<={spec.batch} {spec.precision} "
            f"{spec.gpu} (sm {spec.compute_capability}) TensorRT {spec.trt_version}  {state}"
        )


@app.callback(invoke_without_command=True)
def _root(
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False,
) -> None:
    if version:
        typer.echo(f"streamcolor {__version__}")
        raise typer.Exit()


class Interrupted(BaseException):
    """SIGINT or SIGTERM, raised in the main thread by our own handler. A BaseException of
    our own: typer turns KeyboardInterrupt into a silent exit 130 inside app(), and no
    `except Exception` on the way swallows it; every context manager it passes through
    cleans up (the sink deletes its partial file)."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _raise_interrupted(signum, frame) -> None:
    raise Interrupted(signum)


def _click_usage(e: Exception) -> tuple[str, int] | None:
    """(first line, exit code) of a click usage error, else None.

    typer >= 0.20 vendors click in a private module and older typers use the click package;
    neither exception module is public API, so the error is recognised by the interface every
    click exception has (exit_code and format_message), not by its class."""
    message, code = getattr(e, "format_message", None), getattr(e, "exit_code", None)
    if not callable(message) or not isinstance(code, int) or isinstance(e, StreamcolorError):
        return None
    lines = str(message()).strip().splitlines()
    # typer 0.29 validates choices with a library that prefixes its own "Value error, "
    first = lines[0].replace("Value error, ", "") if lines else type(e).__name__
    return first, code


def _os_error_line(e: OSError) -> str:
    """'cannot write out.mp4: No space left on device' from any OSError (PyAV's included)."""
    what = e.filename or getattr(e, "log", None)
    reason = e.strerror or str(e)
    return f"{reason}: {what}" if isinstance(what, str | os.PathLike) else reason


def run(args: list[str]) -> int:
    """Run the command line with args and return the exit code; every failure is one line on
    stderr: 2 usage, 1 input/output (OS errors such as a full or read-only disk included),
    130 Ctrl-C, 143 SIGTERM, 3 an internal error."""
    signals = (signal.SIGINT, signal.SIGTERM)
    main_thread = threading.current_thread() is threading.main_thread()
    previous = {sig: signal.signal(sig, _raise_interrupted) for sig in signals} if main_thread else {}
    try:
        # Without standalone mode, click returns the code of typer.Exit instead of exiting.
        code = app(args=args or ["--help"], standalone_mode=False)
    except (Interrupted, KeyboardInterrupt, typer.Abort) as e:
        term = getattr(e, "signum", None) == signal.SIGTERM
        _err(f"{'terminated' if term else 'interrupted'}; unfinished output deleted")
        return 128 + (signal.SIGTERM if term else signal.SIGINT)
    except StreamcolorError as e:
        _err(str(e))
        return e.exit_code
    except OSError as e:  # a full or read-only disk, a permission refused (PyAV's errors are OSErrors too)
        _err(_os_error_line(e))
        return 1
    except Exception as e:
        usage = _click_usage(e)
        if usage is not None:
            _err(usage[0])
            return usage[1]
        if os.environ.get("STREAMCOLOR_DEBUG"):  # a bug: still one line, the traceback on request
            raise
        _err(f"internal error: {e!r} (set STREAMCOLOR_DEBUG=1 for the traceback)")
        return 3
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return code if isinstance(code, int) else 0


def main() -> None:
    """Console entry point."""
    sys.exit(run(sys.argv[1:]))
