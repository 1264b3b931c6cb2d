"""`streamcolor video` and `streamcolor image`: one file, URL, image sequence or folder of photos."""

from __future__ import annotations

import signal
import sys
from typing import Annotated

import typer

from streamcolor.api import ColorizeConfig, colorize_video
from streamcolor.commands.options import (
    Backend,
    BackendOpt,
    Codec,
    HintModelOpt,
    HintsOpt,
    Interrupted,
    OverwriteOpt,
    PrecisionOpt,
    Preset,
    ProgressBar,
    ReferenceOpt,
    Temporal,
    ThreadsOpt,
    VividnessOpt,
    _err,
    _frame_rate,
    _hint_file,
    _warn,
    _writes_sequence,
)
from streamcolor.errors import StreamcolorError
from streamcolor.images import colorize_images
from streamcolor.output_plan import EncodeOptions


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
    shot_memory: Annotated[
        bool,
        typer.Option(
            "--shot-memory/--no-shot-memory",
            help="A shot the camera returns to keeps the colours it had (needs a temporal filter).",
        ),
    ] = True,
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
            shot_memory=shot_memory,
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
        if summary.shots:
            typer.echo(summary.shots, err=True)


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
