"""The studio's film: its shots (scene cuts, found in the background) and any frame on demand.

`Film` opens the input once to check it (the CLI's one-line InputError when it cannot be
used), then one background pass decodes every frame in order and records, per frame index:
its time (pts on the clock `streamcolor video` uses: VideoSource's, moved to start at 0),
its raw decoder pts (to seek back to it), and its L* guide at the network output's grid
(what the temporal filters and the hint tracker compute flow and cuts on). Cuts are the
temporal filters' own test (temporal.is_cut), as `--split-shots` finds them (shots.find_cuts).

Frames are read back by seeking to the key frame at or before them and decoding forward;
the last MAX_CACHED decoded frames are kept.
"""

from __future__ import annotations

import contextlib
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from streamcolor.colorizer import Colorizer
from streamcolor.errors import InputError
from streamcolor.source import StreamInfo, VideoSource
from streamcolor.temporal import TemporalConfig, _Flow, is_cut

# decoded frames kept for scrubbing and clicks: (H, W) uint8 luma, 0.9 MB each at 720p
MAX_CACHED = 48
# a frame not kept is decoded from the key frame before it; the frames decoded on the way
# (up to READ_AROUND before it) and READ_AROUND after it are kept too, so that scrubbing frame
# by frame decodes once per READ_AROUND frames, not once per frame (720p, key frames 100
# apart: 0.3-1.2 s a frame before, on 2 cores)
READ_AROUND = 12
# L* guides kept for carrying hints along the flow: (h, w) uint8 at the network output grid,
# about 3 kB a frame at 720p (40 x 72): 100 MB for 36,000 frames (24 min at 25 fps).
# Beyond that a hint is shown where it was given on the frames of its shot.
MAX_GUIDES = 36_000


@dataclass(frozen=True)
class Shot:
    """Frames [start, end) of the film; times in seconds from the film's start (end: the
    time the shot's last frame ends)."""

    index: int
    start: int
    end: int
    start_s: float
    end_s: float

    def as_json(self) -> dict:
        return {"shot": self.index, "start": self.start, "end": self.end, "start_s": self.start_s, "end_s": self.end_s}


class Film:
    """One video file: open() checks it, scan() (a thread) finds its frames and shots.

    colorizer: whose output grid the guides are computed at (the hint model's, so the
    guides are those the render's tracker computes)."""

    def __init__(self, path: str | Path, colorizer: Colorizer, temporal: TemporalConfig | None = None):
        self.path = Path(path)
        self.colorizer = colorizer
        self.temporal = temporal or TemporalConfig()
        with VideoSource(self.path, carry_streams=False) as source:  # InputError in one line
            self.info: StreamInfo = source.info
            first = next((f for f in source.items() if hasattr(f, "y8")), None)
            if first is None:
                raise InputError(f"{self.path} contains no decodable video frames")
        self.width, self.height = self.info.width, self.info.height
        self.rate = float(self.info.average_rate or 25)
        self._cond = threading.Condition()
        self.seconds: list[float] = []  # per frame index, seconds (the render's clock)
        self.pts: list[int | None] = []  # per frame index, pts in info.time_base (the render's clock)
        self._raw_pts: list[int | None] = []  # per frame index, the decoder's pts
        self._guides: list[np.ndarray | None] = []  # per frame index, uint8 L*/100*255 at the grid
        self.cuts: list[int] = []  # indexes of frames that start a new shot
        self.scanned = False  # the background pass reached the end
        self.scan_error: str | None = None
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._read_lock = threading.Lock()  # one decoder for reading back, one reader at a time
        self._reader: VideoSource | None = None
        self._cache_put(0, first.y8)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._scan, name="studio-scan", daemon=True)
        self._started = False

    def start(self) -> Film:
        """Start the scan (once; never after close)."""
        with self._cond:
            if not self._started and not self._stop.is_set():
                self._started = True
                self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        with self._cond:  # a scan never started: nothing more will come
            self.scanned = self.scanned or not self._started
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        with self._read_lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None

    # ---- the background pass ------------------------------------------------------------

    def _scan(self) -> None:
        full = self.info.full_range
        grid = self.colorizer.output_grid((self.height, self.width))
        prev = None
        try:
            with VideoSource(self.path, carry_streams=False) as source:
                tb = source.info.time_base
                index = 0
                for packet in source.container.demux(source.stream):
                    if self._stop.is_set():
                        return
                    try:
                        frames = packet.decode()
                    except av.FFmpegError:
                        continue
                    for frame in frames:
                        raw = frame.pts
                        g = source.gray(frame, index)
                        lo = self.colorizer.guide_lo(g.y8, grid, full)
                        cut = prev is not None and prev.shape == lo.shape and is_cut(lo, prev, self.temporal)
                        prev = lo
                        seconds = float(g.pts * tb) if g.pts is not None and tb else index / self.rate
                        keep = (lo * 255.0 + 0.5).astype(np.uint8) if index < MAX_GUIDES else None
                        with self._cond:
                            self.seconds.append(seconds)
                            self.pts.append(g.pts)
                            self._raw_pts.append(raw)
                            self._guides.append(keep)
                            if cut:
                                self.cuts.append(index)
                            self._cond.notify_all()
                        index += 1
        except (InputError, av.FFmpegError, OSError) as e:
            self.scan_error = str(e)
        finally:
            with self._cond:
                self.scanned = True
                self._cond.notify_all()

    def wait_scanned(self, timeout: float | None = None) -> bool:
        self.start()
        with self._cond:
            return self._cond.wait_for(lambda: self.scanned, timeout)

    @property
    def frames(self) -> int:
        """Frames found so far (all of them once `scanned`)."""
        with self._cond:
            return len(self.seconds)

    def shots(self) -> list[Shot]:
        """The shots found so far; the last one grows until the pass ends."""
        with self._cond:
            n = len(self.seconds)
            starts = [0, *self.cuts]
            ends = [*self.cuts, n]
            secs = list(self.seconds)
        step = 1.0 / self.rate
        out = []
        for k, (s, e) in enumerate(zip(starts, ends)):
            if e <= s:
                continue
            end_s = secs[e] if e < n else secs[-1] + step
            out.append(Shot(k, s, e, secs[s], end_s))
        return out

    def shot_of(self, index: int) -> Shot | None:
        return next((s for s in self.shots() if s.start <= index < s.end), None)

    def time_of(self, index: int) -> float:
        with self._cond:
            return self.seconds[index] if index < len(self.seconds) else index / self.rate

    def index_at(self, seconds: float) -> int:
        """The first frame at or after `seconds` (the frame a hint with that time starts on)."""
        with self._cond:
            secs = list(self.seconds)
        return int(np.searchsorted(np.asarray(secs), seconds - 1e-9)) if secs else 0

    def guide(self, index: int) -> np.ndarray | None:
        """(h, w) float32 L*/100 at the grid, or None where not kept."""
        with self._cond:
            g = self._guides[index] if index < len(self._guides) else None
        return None if g is None else g.astype(np.float32) / 255.0

    def carry(self, x: float, y: float, src: int, dst: int, flow: _Flow) -> tuple[float, float] | None:
        """A point (fractions) on frame src carried along the optical flow to frame dst of the
        same shot (either direction, as the render's tracker does forward and back), or None
        when it leaves the frame. Where the guides were not kept: the point stays put."""
        step = 1 if dst > src else -1
        i = src
        while i != dst:
            a, b = self.guide(i), self.guide(i + step)
            if a is None or b is None:
                return x, y
            x, y = (float(v) for v in flow.carry(a, b, np.float32([[x, y]]))[0])  # as the render's tracker
            if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
                return None
            i += step
        return x, y

    # ---- reading frames back ------------------------------------------------------------

    def _cache_put(self, index: int, y8: np.ndarray) -> None:
        with self._cache_lock:
            self._cache[index] = y8
            self._cache.move_to_end(index)
            while len(self._cache) > MAX_CACHED:
                self._cache.popitem(last=False)

    def _cached(self, index: int) -> np.ndarray | None:
        with self._cache_lock:
            y8 = self._cache.get(index)
            if y8 is not None:
                self._cache.move_to_end(index)
            return y8

    def y8(self, index: int, timeout: float = 60.0) -> np.ndarray:
        """(H, W) uint8 luma codes of frame `index` (0-based, in decoding order as
        `streamcolor video` counts them). Raises IndexError past the film's end."""
        got = self._cached(index)
        if got is not None:
            return got
        self.start()
        with self._cond:
            self._cond.wait_for(lambda: len(self.seconds) > index or self.scanned, timeout)
            if index >= len(self.seconds):
                raise IndexError(f"frame {index} is past the film's end ({len(self.seconds)} frames)")
        got = None
        with contextlib.closing(self.read(index, index + READ_AROUND)) as frames:
            for i, y8 in frames:
                if i == index:
                    got = y8
        if got is None:
            raise IndexError(f"frame {index} could not be decoded again")
        return got

    def read(self, first: int, end: int, source: VideoSource | None = None):
        """Yield (index, y8) for frames [first, end), decoding from the key frame at or before
        `first` (each frame also cached). source: a VideoSource of the film's own for a long
        read (the shot preview), so that the frame view's reader is not held meanwhile."""
        if source is not None:
            yield from self._read(first, end, source)
            return
        with self._read_lock:
            if self._reader is None:
                self._reader = VideoSource(self.path, carry_streams=False)
            yield from self._read(first, end, self._reader)

    def _read(self, first: int, end: int, src: VideoSource):
        with self._cond:
            raw = list(self._raw_pts)
        by_pts = {p: i for i, p in enumerate(raw) if p is not None}
        target = raw[first] if first < len(raw) else None
        seekable = target is not None and len(by_pts) == len(raw)
        if seekable:
            src.container.seek(target, stream=src.stream, backward=True, any_frame=False)
        else:  # no usable timestamps: from the start, counting frames
            src.container.seek(0, stream=src.stream, backward=True, any_frame=False)
        counter = 0
        for packet in src.container.demux(src.stream):
            try:
                frames = packet.decode()
            except av.FFmpegError:
                continue
            for frame in frames:
                i = by_pts.get(frame.pts) if seekable else counter
                counter += 1
                if i is None or i < first - READ_AROUND:
                    continue
                if i >= end:
                    return
                y8 = src.gray(frame, i).y8
                self._cache_put(i, y8)
                if i >= first:
                    yield i, y8
