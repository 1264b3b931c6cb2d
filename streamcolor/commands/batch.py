"""`streamcolor batch`: many files at once, with a progress table and a summary."""

from __future__ import annotations

import signal
import sys
import threading
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from streamcolor.api import ColorizeConfig
from streamcolor.commands.options import (
    Backend,
    BackendOpt,
    Codec,
    ModelOpt,
    PrecisionOpt,
    Preset,
    Temporal,
    VividnessOpt,
    _err,
)
from streamcolor.errors import StreamcolorError
from streamcolor.model import DEFAULT_MODEL
from streamcolor.output_plan import EncodeOptions


class Container(str, Enum):
    mp4 = "mp4"
    mkv = "mkv"
    mov = "mov"
    avi = "avi"


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
    from streamcolor.batch_jobs import RECORD_NAME

    if not quiet:
        fps = summary.frames / summary.seconds if summary.seconds > 0 else 0.0
        typer.echo(
            f"batch: {len(summary.done)} done, {len(summary.skipped)} skipped, {len(summary.failed)} failed "
            f"in {summary.seconds:.1f} s ({summary.frames} frames, {fps:.1f} fps); record: {outdir / RECORD_NAME}",
            err=True,
        )
    for r in summary.failed:
        _err(f"failed: {r.input}: {r.error}")
