"""What every command shares: the flags' choices and help, one-line messages, the progress bar."""

from __future__ import annotations

import os
import sys
import time
from enum import Enum
from fractions import Fraction
from pathlib import Path
from typing import Annotated

import typer

from streamcolor.api import Progress
from streamcolor.errors import ConfigError


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


def _size(text: str, what: str) -> tuple[int, int]:
    """'1920x1080' -> (height, width)."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise typer.BadParameter(f"{what} must look like 1920x1080, got '{text}'") from None
    if w < 1 or h < 1:
        raise typer.BadParameter(f"{what} must be positive, got '{text}'")
    return h, w


class Interrupted(BaseException):
    """SIGINT or SIGTERM, raised in the main thread by our own handler. A BaseException of
    our own: typer turns KeyboardInterrupt into a silent exit 130 inside app(), and no
    `except Exception` on the way swallows it; every context manager it passes through
    cleans up (the sink deletes its partial file)."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum
