"""One job of `streamcolor batch`: what it is (Job), the batch's settings (BatchConfig), how
it runs in a local worker process or a Ray task (run_job), and its line in the record
(JobResult). batch.py (the driver, local workers) and batch_ray.py (Ray tasks) both use it,
so neither has to import the other.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import av

from streamcolor.api import ColorizeConfig, colorize_video, describe, make_colorizer
from streamcolor.errors import ConfigError, StreamcolorError
from streamcolor.images import colorize_image_file
from streamcolor.shots import Piece, colorize_piece

CONTAINERS = ("mp4", "mkv", "mov", "avi")
KINDS = ("auto", "video", "image")


@dataclass(frozen=True)
class Job:
    """One input and where its output goes; frames is an estimate for progress (0: unknown)."""

    src: Path
    out: Path
    kind: str  # "video" | "image" | "piece" (frames of a video, --split-shots)
    frames: int = 0
    piece: Piece | None = None


@dataclass
class JobResult:
    """One line of the record."""

    input: str
    output: str
    status: str  # "done" | "failed" | "skipped"
    frames: int = 0
    seconds: float = 0.0
    fps: float = 0.0
    backend: str = ""
    error: str = ""
    host: str = ""
    gpu: str = ""  # CUDA_VISIBLE_DEVICES of the worker that ran it ('' when not set)
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class BatchConfig:
    """colorize: the same settings `streamcolor video` takes. container: the outputs' video
    container (extension). kind: auto (videos and photos told apart by extension), video, image.
    workers: local processes (None: default_workers()). gpus: device ids handed out one per
    worker (CUDA_VISIBLE_DEVICES). ray: None (local), 'auto', 'local' or a cluster address."""

    colorize: ColorizeConfig = field(default_factory=ColorizeConfig)
    container: str = "mp4"
    kind: str = "auto"
    overwrite: bool = False
    workers: int | None = None
    gpus: tuple[str, ...] = ()
    ray: str | None = None
    split_shots: bool = False  # cut each video at scene cuts into pieces colorized at once

    def __post_init__(self) -> None:
        if self.container not in CONTAINERS:
            raise ConfigError(f"unknown container '{self.container}'; choose one of: {', '.join(CONTAINERS)}")
        if self.kind not in KINDS:
            raise ConfigError(f"unknown kind '{self.kind}'; choose one of: {', '.join(KINDS)}")
        if self.workers is not None and self.workers < 1:
            raise ConfigError(f"workers must be at least 1, got {self.workers}")
        if self.split_shots and self.colorize.deflicker:
            raise ConfigError("--split-shots cannot be used with --deflicker (its correction runs across shots)")
        if self.gpus and self.ray:
            raise ConfigError("--gpus is for local workers; on Ray each task asks the cluster for one GPU")


# ---------------------------------------------------------------- one job (in a worker or a Ray task)

_colorizers: dict[tuple, object] = {}  # one engine per worker process, built on its first job


def colorizer_for(cfg: ColorizeConfig):
    key = (cfg.model, cfg.backend, cfg.threads, cfg.precision, cfg.vividness)
    if key not in _colorizers:
        _colorizers[key] = make_colorizer(cfg)
    return _colorizers[key]


def run_job(job: Job, cfg: ColorizeConfig, on_frames: Callable[[int], None] | None = None) -> JobResult:
    """Colorize one job; a refused or broken input becomes a failed result, not an exception.
    KeyboardInterrupt goes through (the sink deletes its partial file on the way)."""
    where = dict(host=socket.gethostname(), gpu=os.environ.get("CUDA_VISIBLE_DEVICES", ""))
    start = time.perf_counter()
    warnings: list[str] = []
    try:
        colorizer = colorizer_for(cfg)
        job.out.parent.mkdir(parents=True, exist_ok=True)
        if job.kind == "image":
            colorize_image_file(job.src, job.out, colorizer)
            frames, backend = 1, describe(colorizer)
        elif job.kind == "piece":
            summary = colorize_piece(job.src, job.out, job.piece, cfg, colorizer, warn=warnings.append)
            frames, backend = summary.frames, summary.backend
        else:
            progress = (lambda p: on_frames(p.frames)) if on_frames else None
            # The driver dispatches a job with a finished output only under --overwrite; the old
            # file stays until the new one replaces it.
            summary = colorize_video(
                job.src, job.out, cfg, progress, warn=warnings.append, colorizer=colorizer, overwrite=True
            )
            frames, backend = summary.frames, summary.backend
    except StreamcolorError as e:
        return JobResult(str(job.src), str(job.out), "failed", error=str(e), warnings=warnings, **where)
    except (OSError, av.FFmpegError) as e:
        reason = f"{type(e).__name__}: {getattr(e, 'strerror', None) or e}"
        return JobResult(str(job.src), str(job.out), "failed", error=reason, warnings=warnings, **where)
    except Exception as e:  # a bug must not stop the other files; the record keeps it
        reason = f"internal error: {e!r}"
        return JobResult(str(job.src), str(job.out), "failed", error=reason, warnings=warnings, **where)
    seconds = time.perf_counter() - start
    fps = frames / seconds if seconds > 0 else 0.0
    return JobResult(
        str(job.src),
        str(job.out),
        "done",
        frames,
        round(seconds, 3),
        round(fps, 2),
        backend,
        warnings=warnings,
        **where,
    )


RECORD_NAME = "streamcolor-batch.jsonl"


LOCK_NAME = ".streamcolor-batch.lock"


@dataclass
class BatchProgress:
    files_done: int  # finished (done or failed) of those to run
    files_total: int
    frames_done: int  # finished files plus the frames of those under way
    frames_total: int  # estimate
    elapsed: float
