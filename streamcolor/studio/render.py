"""The studio's render: `streamcolor video FILM OUT --hints <the studio's hints>` in a thread,
with its status for the page."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

from streamcolor.api import ColorizeConfig, Progress, colorize_video
from streamcolor.errors import StreamcolorError
from streamcolor.hints.file import HintFile
from streamcolor.output_plan import EncodeOptions
from streamcolor.studio.document import _one_line


@dataclass
class JobStatus:
    state: str = "idle"  # idle, running, done, failed, cancelled
    frames: int = 0
    total: int = 0
    started: float = 0.0
    finished: float = 0.0
    error: str | None = None

    def as_json(self, **extra) -> dict:
        now = self.finished if self.state != "running" else time.monotonic()
        elapsed = max(0.0, now - self.started) if self.started else 0.0
        fps = self.frames / elapsed if elapsed > 0 else 0.0
        left = max(0, self.total - self.frames)
        eta = left / fps if fps > 0 and self.state == "running" else (0.0 if self.state == "done" else None)
        return {
            "state": self.state,
            "frames": self.frames,
            "total": self.total,
            "progress": (self.frames / self.total) if self.total else (1.0 if self.state == "done" else 0.0),
            "elapsed_s": round(elapsed, 2),
            "fps": round(fps, 2),
            "eta_s": None if eta is None else round(eta, 1),
            "error": self.error,
            **extra,
        }


class _Cancelled(StreamcolorError):
    """A job stopped on request (the page, or the studio closing)."""


class RenderJob:
    """`streamcolor video FILM OUT --hints <the studio's hints> --no-shot-memory` in a thread."""

    def __init__(
        self, film: Path, out: Path, hints: HintFile, encode: EncodeOptions, threads: int | None, frames: int = 0
    ):
        """frames: the film's frame count when known (the progress bar's length from the start)."""
        self.film, self.out = film, out
        # no shot memory: the page previews each shot alone, and the render gives what it showed
        self.cfg = ColorizeConfig(hints=hints or None, encode=encode, threads=threads, shot_memory=False)
        self.status = JobStatus("running", total=frames, started=time.monotonic())
        self.warnings: list[str] = []
        self.summary = None
        self._cancel = threading.Event()
        self._thread = threading.Thread(target=self._run, name="studio-render", daemon=True)

    def start(self, overwrite: bool) -> RenderJob:
        self._overwrite = overwrite
        self._thread.start()
        return self

    def _progress(self, p: Progress) -> None:
        if self._cancel.is_set():
            raise _Cancelled("render cancelled; unfinished output deleted")
        self.status.frames, self.status.total = p.frames, max(p.total or self.status.total, p.frames)

    def _run(self) -> None:
        try:
            s = colorize_video(
                self.film, self.out, self.cfg, self._progress, self.warnings.append, overwrite=self._overwrite
            )
            self.summary = s
            self.status.frames = self.status.total = s.frames
            self.status.state = "done"
        except _Cancelled as e:
            self.status.state, self.status.error = "cancelled", str(e)
        except StreamcolorError as e:
            self.status.state, self.status.error = "failed", _one_line(str(e))
        except Exception as e:  # noqa: BLE001 - shown on the page in one line, never a traceback
            self.status.state, self.status.error = "failed", f"internal error: {e!r}"
        finally:
            self.status.finished = time.monotonic()

    def cancel(self, wait: float = 30.0) -> None:
        self._cancel.set()
        self._thread.join(wait)

    def as_json(self) -> dict:
        return self.status.as_json(
            out=str(self.out), warnings=self.warnings[-5:], hints=getattr(self.summary, "hints", None)
        )
