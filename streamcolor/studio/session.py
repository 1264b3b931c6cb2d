"""The studio's state: the film, the hints file it edits, a frame colorized with the hints
on it, the shot preview in motion, and the render.

Everything here calls the runtime's public pieces: the hints file (streamcolor/hints/file.py:
parse_hints, load_hints), hints on one picture (hints.photo.colorize_with_hints), hints
through a shot (hints.tracker.HintTracker, hints.backward.backward_positions and pipeline.colorize_items,
as `streamcolor video` runs them), and the render itself (api.colorize_video).

Which hints a single frame shows (the frame view; the render and the shot preview run the
tracker over every frame instead):
- a hint is on the frames of the shot it starts in (the render carries it back to the
  shot's first frame: `--temporal bidirectional`, the default) and, `until = T`, on the
  frames after that shot up to T s, where it was at the cut;
- on its shot's other frames it is carried along the optical flow from where it was given
  (the tracker's DIS flow on the L* guides) and leaves when the point leaves the frame;
- a pinned hint is on its own shot and, on each frame of a later shot, where the render's
  test finds it again (the best-matching cell of the pretrained features, at least
  hints.tracker.PIN_THRESHOLD); the render looks for it frame by frame only until it is found,
  then carries it along the flow.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import replace
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from streamcolor.api import ColorizeConfig, make_colorizer
from streamcolor.colorizer import Colorizer
from streamcolor.errors import ConfigError, OutputError, StreamcolorError
from streamcolor.hints.backward import backward_positions
from streamcolor.hints.file import UNTIL_CUT, UNTIL_PIN, Hint, HintFile, Reference
from streamcolor.hints.photo import colorize_with_hints
from streamcolor.hints.tracker import PIN_THRESHOLD, HintTracker, best_cell, descriptor_at
from streamcolor.model import HINTS_MODEL
from streamcolor.output_plan import EncodeOptions, check_output_path, check_writable
from streamcolor.pipeline import StageTimes, colorize_items
from streamcolor.source import GrayFrame, VideoSource
from streamcolor.studio.document import HintsDocument, _one_line
from streamcolor.studio.film import Film, Shot
from streamcolor.studio.render import JobStatus, RenderJob, _Cancelled
from streamcolor.temporal import _Flow

JPEG_QUALITY = 90
# the shot preview's frames: at most this wide (JPEG cost and memory stay small)
PREVIEW_WIDTH = 640
# a reference photo dropped on the page: at most this many bytes
MAX_REFERENCE_BYTES = 32 << 20
HINTS_SUFFIX = ".hints.toml"
RENDER_SUFFIX = ".colour.mp4"
# frames whose encoder features are kept (pinned hints looked for in later shots)
FEATURES_KEPT = 64
# seconds the shot scan waits for the first frame to be asked for and sent
SCAN_DELAY = 2.0


def default_hints_path(film: Path) -> Path:
    """FILM.hints.toml beside the film: reel7.mp4 -> reel7.hints.toml."""
    return film.with_name(film.stem + HINTS_SUFFIX)


def default_render_path(film: Path) -> Path:
    """FILM.colour.mp4 beside the film."""
    return film.with_name(film.stem + RENDER_SUFFIX)


class ShotPreview:
    """One shot colorized as the render colorizes it (the hint tracker over every frame,
    the bidirectional temporal filter, key frames every 2nd), kept as JPEGs to play."""

    def __init__(self, studio: Studio, shot: Shot):
        self.studio, self.shot = studio, shot
        self.jpegs: list[bytes] = []
        self.status = JobStatus("running", total=shot.end - shot.start, started=time.monotonic())
        self._cancel = threading.Event()
        self._thread = threading.Thread(target=self._run, name="studio-preview", daemon=True)
        self._thread.start()

    def _frames(self):
        film = self.studio.film
        with VideoSource(film.path, carry_streams=False) as source:  # its own decoder: the frame view's stays free
            for i, y8 in film.read(self.shot.start, self.shot.end, source):
                if self._cancel.is_set():
                    raise _Cancelled("preview cancelled")
                yield GrayFrame(y8=y8, pts=film.pts[i], rotation=0, index=i)

    def _run(self) -> None:
        st = self.studio
        film, info = st.film, st.film.info
        try:
            hints = st.hints_for_shot(self.shot)
            tracker = None
            if hints:
                tracker = HintTracker(hints, st.colorizer, film.width, film.height, info.full_range)
                tracker.carry_back(
                    backward_positions(
                        self._frames(), lambda f: film.time_of(f.index), hints, st.colorizer, info.full_range
                    )
                )
            # the frame view's requests go on meanwhile (ONNX Runtime runs calls from two threads)
            items = colorize_items(
                self._frames(),
                st.colorizer,
                info,
                4,
                StageTimes(),
                "bidirectional",
                2,
                first_index=self.shot.start,
                tracker=tracker,
            )
            for f in items:
                self.jpegs.append(yuv_jpeg(f.y8, f.chroma, PREVIEW_WIDTH))
                self.status.frames = len(self.jpegs)
            self.status.state = "done"
        except _Cancelled as e:
            self.status.state, self.status.error = "cancelled", str(e)
        except StreamcolorError as e:
            self.status.state, self.status.error = "failed", _one_line(str(e))
        except Exception as e:  # noqa: BLE001 - one line on the page
            self.status.state, self.status.error = "failed", f"internal error: {e!r}"
        finally:
            self.status.finished = time.monotonic()

    def cancel(self, wait: float = 10.0) -> None:
        self._cancel.set()
        self._thread.join(wait)

    def as_json(self) -> dict:
        return self.status.as_json(shot=self.shot.index, rate=self.studio.film.rate)


def yuv_jpeg(y8: np.ndarray, chroma: tuple[np.ndarray, np.ndarray], width: int) -> bytes:
    """Y (H, W) uint8 + Cb, Cr (H/2, W/2) uint8 -> JPEG at most `width` wide (BT.601 limited
    range, OpenCV's I420 conversion: near enough for a preview)."""
    h, w = (y8.shape[0] // 2) * 2, (y8.shape[1] // 2) * 2
    u, v = (c[: h // 2, : w // 2] for c in chroma)
    i420 = np.concatenate([y8[:h, :w].ravel(), u.ravel(), v.ravel()]).reshape(h * 3 // 2, w)
    img = cv2.cvtColor(i420, cv2.COLOR_YUV2BGR_I420)
    if w > width:
        img = cv2.resize(img, (width, round(h * width / w)), interpolation=cv2.INTER_AREA)
    return cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])[1].tobytes()


class Studio:
    """The studio over one film: a context manager (the scan thread and the jobs stop on exit).

    film: a video file; hints_path: the hints file to edit (default FILM.hints.toml);
    threads: inference threads (None: all cores)."""

    def __init__(self, film: str | Path, hints_path: str | Path | None = None, threads: int | None = None):
        self.film_path = Path(film)
        self.threads = threads
        self.doc = HintsDocument(Path(hints_path) if hints_path else default_hints_path(self.film_path))
        check_writable(self.doc.path.parent)  # saved on every change: a folder that takes files
        self.colorizer: Colorizer = make_colorizer(ColorizeConfig(model=HINTS_MODEL, threads=threads))
        self.film = Film(self.film_path, self.colorizer)
        self.network = threading.Lock()  # one network run at a time: 2 cores, many requests
        self.render: RenderJob | None = None
        self.preview: ShotPreview | None = None
        self._flow = _Flow(2)
        self._flow_lock = threading.Lock()
        self._carried = lru_cache(maxsize=4096)(self._carry)
        self._first_frame = threading.Event()
        self._features: dict[int, np.ndarray] = {}
        self._features_lock = threading.Lock()

    def __enter__(self) -> Studio:
        # the scan decodes the whole film: it starts once the first frame is out (or after
        # SCAN_DELAY s), so that it does not slow the first frame on 2 cores
        threading.Thread(target=self._start_scan, name="studio-scan-start", daemon=True).start()
        return self

    def _start_scan(self) -> None:
        self._first_frame.wait(SCAN_DELAY)
        self.film.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Stop a render (its partial file is deleted) and a preview; the hints are on disk."""
        if self.render is not None and self.render.status.state == "running":
            self.render.cancel()
        if self.preview is not None and self.preview.status.state == "running":
            self.preview.cancel()
        self.film.close()

    # ---- hints on a frame ---------------------------------------------------------------

    def start_index(self, h: Hint) -> int:
        return h.frame if h.frame is not None else self.film.index_at(h.time or 0.0)

    def _carry(self, x: float, y: float, src: int, dst: int) -> tuple[float, float] | None:
        with self._flow_lock:
            return self.film.carry(x, y, src, dst, self._flow)

    def _moved(self, h: Hint, x: float, y: float, at: tuple[float, float], src: int, dst: int | None) -> Hint:
        """h (its first point (x, y) on frame src) put at `at` on frame dst, in fractions; a
        stroke's other vertices carried along the flow too (dst None, a pin found again: moved
        with the first vertex, as the render's tracker moves it; so is a vertex that leaves)."""
        v = h.vertices(self.film.width, self.film.height)
        if v is None:
            return replace(h, x=at[0], y=at[1], pixels=False)
        dx, dy = at[0] - x, at[1] - y
        pts = [(float(at[0]), float(at[1]))]
        for vx, vy in v[1:].tolist():
            c = self._carried(vx, vy, src, dst) if dst is not None and dst != src else None
            pts.append(c if c is not None else (vx + dx, vy + dy))
        return replace(h, x=at[0], y=at[1], pixels=False, stroke=tuple(pts))

    def placed_hints(self, index: int, hints: HintFile | None = None) -> list[tuple[int, Hint, float, float]]:
        """The hints shown on frame `index`: (hint number in the file, the hint as placed on
        this frame (fractions; a stroke with its vertices there), x, y fractions where it is on
        this frame). See the module docstring for the rule."""
        hints = hints if hints is not None else self.doc.snapshot()[0]
        shot = self.film.shot_of(index)
        seconds = self.film.time_of(index)
        out = []
        for k, h in enumerate(hints.hints):
            start = self.start_index(h)
            hshot = self.film.shot_of(start)
            if hshot is None or shot is None:
                continue
            x, y = h.position(self.film.width, self.film.height)
            if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
                continue
            if hshot.index == shot.index:
                if h.ended(seconds):
                    continue
                dst = index
                at = (x, y) if start == index else self._carried(x, y, start, index)
            elif isinstance(h.until, float) and index > hshot.start and not h.ended(seconds):
                dst = hshot.end - 1
                at = self._carried(x, y, start, dst)  # kept where it was at the cut
            elif h.until == UNTIL_PIN and index > hshot.start:
                dst = None
                at = self.find_pin(h, start, x, y, index)
            else:
                continue
            if at is not None:
                out.append((k, self._moved(h, x, y, at, start, dst), at[0], at[1]))
        return out

    def features(self, index: int) -> np.ndarray:
        """(gh, gw, C) float32 unit vectors: the hint model's encoder features of frame `index`
        (they do not depend on the hints; the last FEATURES_KEPT frames' are kept)."""
        with self._features_lock:
            got = self._features.get(index)
        if got is not None:
            return got
        c = self.colorizer
        x = c.network_input(self.film.y8(index), self.film.info.full_range)
        with self.network:
            f = c.predict_features([x])[1][0]
        with self._features_lock:
            self._features[index] = f
            while len(self._features) > FEATURES_KEPT:
                self._features.pop(next(iter(self._features)))
        return f

    def find_pin(self, h: Hint, start: int, x: float, y: float, index: int) -> tuple[float, float] | None:
        """Where a pinned hint given on frame `start` at (x, y) is found again on frame `index`
        of a later shot, as the render's tracker looks for it (hints.tracker.best_cell: the best
        matching cell of the pretrained features, at least PIN_THRESHOLD), or None."""
        descriptor = descriptor_at(self.features(start), x, y)
        sim, fx, fy = best_cell(self.features(index), descriptor)
        return (fx, fy) if sim >= PIN_THRESHOLD else None

    def references_on(self, index: int, hints: HintFile | None = None) -> tuple[Reference, ...]:
        hints = hints if hints is not None else self.doc.snapshot()[0]
        seconds = self.film.time_of(index)
        return tuple(r for r in hints.references if r.covers(seconds))

    def hints_for_shot(self, shot: Shot) -> HintFile:
        """The hints the render applies in `shot`, for a run over that shot alone: those that
        start in it, and those with `until = T` started before it that are still running (from
        its first frame, where they were at their own shot's end), and pins from earlier shots
        found again on its first frame (find_pin; the render looks on every frame until found)."""
        hints = self.doc.snapshot()[0]
        keep = []
        for h in hints.hints:
            start = self.start_index(h)
            if shot.start <= start < shot.end:
                keep.append(h)
            elif start < shot.start and isinstance(h.until, float) and h.until > shot.start_s:
                hshot = self.film.shot_of(start)
                x, y = h.position(self.film.width, self.film.height)
                at = self._carried(x, y, start, hshot.end - 1) if hshot else (x, y)
                if at is not None:
                    moved = self._moved(h, x, y, at, start, hshot.end - 1 if hshot else start)
                    keep.append(replace(moved, frame=shot.start, time=None))
            elif start < shot.start and h.until == UNTIL_PIN:
                x, y = h.position(self.film.width, self.film.height)
                at = self.find_pin(h, start, x, y, shot.start)
                if at is not None:
                    keep.append(replace(self._moved(h, x, y, at, start, None), frame=shot.start, time=None))
        return HintFile(tuple(keep), hints.references)

    # ---- frames -------------------------------------------------------------------------

    def frame_jpeg(self, index: int, view: str = "color", width: int | None = None) -> bytes:
        """Frame `index` as JPEG, `width` pixels wide at most (default the film's): the gray
        input (view 'gray') or colorized with the hints and references on it ('color').
        Raises IndexError past the film's end."""
        y8 = self.film.y8(index)
        h, w = y8.shape
        out_w = min(w, width) if width else w
        size = (max(1, round(h * out_w / w)), out_w)
        if view == "gray":
            img = y8 if size == (h, w) else cv2.resize(y8, size[::-1], interpolation=cv2.INTER_AREA)
        else:
            img = self.colorize(index, y8, size)
        data = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])[1].tobytes()
        self._first_frame.set()
        return data

    def colorize(self, index: int, y8: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        """(H, W) uint8 luma of frame `index` -> (size) uint8 BGR with the hints on it."""
        hints = self.doc.snapshot()[0]
        placed = [
            replace(h, x=x, y=y, pixels=False, time=0.0, frame=None, until=UNTIL_CUT)
            for _, h, x, y in self.placed_hints(index, hints)
        ]
        hf = HintFile(tuple(placed), self.references_on(index, hints))
        full = self.film.info.full_range
        c = self.colorizer
        with self.network:
            if hf:
                ab = colorize_with_hints(y8, c, hf, full)
            else:
                ab = c.predict([c.network_input(y8, full)])[0]
        lab = c._lab_at(y8, ab, size, full)
        rgb = np.clip(cv2.cvtColor(lab, cv2.COLOR_Lab2RGB), 0.0, 1.0)
        return (rgb[..., ::-1] * 255.0 + 0.5).astype(np.uint8)

    def hints_json(self, index: int | None = None) -> dict:
        """The hints for the page: each with its fields (x, y fractions, a stroke's vertices
        [[x, y], ...] fractions or null, '#rrggbb', frame index it starts on, until, radius
        pixels or None, its line in the file) and, for frame `index`, where it is on that frame
        (shown: [x, y], shown_stroke: a stroke's vertices there; null where it is not shown)."""
        hints, version = self.doc.snapshot()
        on = {k: (x, y, p.stroke) for k, p, x, y in self.placed_hints(index, hints)} if index is not None else {}
        base = self.doc.path.parent.resolve()
        rows = []
        for k, h in enumerate(hints.hints):
            x, y = h.position(self.film.width, self.film.height)
            v = h.vertices(self.film.width, self.film.height)
            rows.append(
                {
                    "id": k,
                    "x": x,
                    "y": y,
                    "stroke": None if v is None else v.tolist(),
                    "color": "#{:02x}{:02x}{:02x}".format(*h.rgb),
                    "frame": self.start_index(h),
                    "until": h.until,
                    "radius": h.radius,
                    "line": h.line,
                    "shown": list(on[k][:2]) if k in on else None,
                    "shown_stroke": [list(p) for p in on[k][2]] if k in on and on[k][2] is not None else None,
                }
            )
        refs = []
        for r in hints.references:
            p = Path(r.path).resolve()
            shown = os.path.relpath(p, base) if p.is_relative_to(base) else str(p)
            refs.append({"path": shown, "from": r.start, "to": r.end if np.isfinite(r.end) else None, "line": r.line})
        return {
            "hints": rows,
            "references": refs,
            "version": version,
            "error": self.doc.error,
            "file": str(self.doc.path),
        }

    # ---- references dropped on the page -------------------------------------------------

    def save_reference(self, name: str, data: bytes) -> Path:
        """A photo dropped on the page, written beside the hints file in NAME.refs/ under a
        name not taken yet (nothing is overwritten). -> its path. Raises ConfigError when it
        is not a colour photo OpenCV reads, OutputError when it cannot be written."""
        if len(data) > MAX_REFERENCE_BYTES:
            raise ConfigError(f"reference photo too large ({len(data) >> 20} MB; at most {MAX_REFERENCE_BYTES >> 20})")
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
        if img is None:
            raise ConfigError(f"reference photo {name!r} is not an image OpenCV can read")
        stem = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in Path(name).stem)[:60] or "reference"
        suffix = Path(name).suffix.lower()
        same_format = suffix in {".jpg", ".jpeg", ".png", ".webp"}  # else written as PNG
        suffix = suffix if same_format else ".png"
        folder = self.doc.path.with_name(self.doc.path.name.removesuffix(".toml") + ".refs")
        try:
            folder.mkdir(exist_ok=True)
            for n in range(1, 10_000):
                path = folder / (f"{stem}{suffix}" if n == 1 else f"{stem}-{n}{suffix}")
                try:
                    with open(path, "xb") as f:  # "x": never replaces a file
                        f.write(data if same_format else cv2.imencode(".png", img)[1].tobytes())
                    return path
                except FileExistsError:
                    continue
        except OSError as e:
            raise OutputError(f"cannot save the reference photo in {folder}: {e.strerror or e}") from None
        raise OutputError(f"cannot save the reference photo in {folder}: every name taken")

    def reference_file(self, shown: str) -> Path | None:
        """The file of a reference in the current hints, by the path hints_json shows."""
        base = self.doc.path.parent.resolve()
        for r in self.doc.snapshot()[0].references:
            p = Path(r.path).resolve()
            if shown in (str(p), os.path.relpath(p, base)):
                return p
        return None

    # ---- jobs ---------------------------------------------------------------------------

    def start_render(self, out: str | None = None, codec: str = "auto", overwrite: bool = False) -> RenderJob:
        """Start rendering the film with the current hints. Raises OutputError/ConfigError (one
        line) for an output that cannot be written or a render already running."""
        if self.render is not None and self.render.status.state == "running":
            raise ConfigError("a render is already running")
        target = Path(out) if out else default_render_path(self.film_path)
        if not target.is_absolute():
            target = self.film_path.parent / target
        check_output_path(target, [self.film_path], overwrite)
        frames = self.film.frames if self.film.scanned else self.film.info.frames_estimate
        hints = self.doc.snapshot()[0]
        self.render = RenderJob(self.film_path, target, hints, EncodeOptions(codec=codec), self.threads, frames)
        self.render.start(overwrite)
        return self.render

    def start_preview(self, shot_index: int) -> ShotPreview:
        shots = self.film.shots()
        if not 0 <= shot_index < len(shots):
            raise ConfigError(f"no shot {shot_index} (the film has {len(shots)} so far)")
        if self.preview is not None and self.preview.status.state == "running":
            self.preview.cancel()
        self.preview = ShotPreview(self, shots[shot_index])
        return self.preview
