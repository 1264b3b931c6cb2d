"""Threaded stages joined by bounded queues: decode -> colorize (batched) -> encode, wired
once (run_pipeline) for files, shots, the bench and live runs.

Files apply backpressure (a full queue blocks its producer), so memory stays flat
however long the input is; live runs drop the oldest frame instead (Policy). Order is
preserved end to end; an exception in a worker is carried to the consumer and raised there
(detectron2 `AsyncPredictor`'s pattern).
"""

from __future__ import annotations

import functools
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from streamcolor.colorizer import Colorizer
from streamcolor.config import check_keyframe_interval
from streamcolor.hints.tracker import HintTracker, TrackedFrames
from streamcolor.shot_memory import ShotMemory
from streamcolor.source import GrayFrame, StreamInfo
from streamcolor.temporal import BidirectionalFilter, CausalFilter, TemporalConfig

_END = object()


@dataclass
class _Failure:
    exc: BaseException


class DropQueue:
    """A bounded FIFO between two threads. drop_oldest: a full queue discards its oldest
    item to make room (live); otherwise put() waits for room (files). The end marker and a
    worker's failure are never dropped and never wait. on_drop: called for each item dropped."""

    def __init__(self, maxsize: int, drop_oldest: bool, on_drop: Callable[[], None] | None = None):
        self.maxsize = maxsize
        self.drop_oldest = drop_oldest
        self.on_drop = on_drop
        self.items: deque = deque()
        self.cond = threading.Condition()
        self.dropped = 0

    def put(self, item: object, stop: threading.Event) -> bool:
        """-> False when stop was set while waiting for room (the item is not queued)."""
        with self.cond:
            if item is not _END and not isinstance(item, _Failure):
                while len(self.items) >= self.maxsize:
                    if self.drop_oldest:
                        self.items.popleft()
                        self.dropped += 1
                        if self.on_drop is not None:
                            self.on_drop()
                    elif stop.is_set():
                        return False
                    else:
                        self.cond.wait(0.1)
            self.items.append(item)
            self.cond.notify_all()
            return True

    def get(self, timeout: float | None = None) -> object | None:
        """The next item, or None after timeout seconds without one."""
        with self.cond:
            if not self.cond.wait_for(lambda: self.items, timeout):
                return None
            item = self.items.popleft()
            self.cond.notify_all()
            return item


class Stage:
    """Runs fn(iterable) -> iterator in a thread; iterate the Stage to consume its output.
    drop_oldest: a full queue drops its oldest item (live) instead of waiting (files).
    stop: an event shared with other stages (set, they all end); default: the Stage's own."""

    def __init__(
        self,
        name: str,
        fn: Callable[[Iterable], Iterator],
        upstream: Iterable,
        maxsize: int,
        drop_oldest: bool = False,
        stop: threading.Event | None = None,
        on_drop: Callable[[], None] | None = None,
    ):
        self.name = name
        self.queue = DropQueue(maxsize, drop_oldest, on_drop)
        self.stop = stop or threading.Event()
        self._thread = threading.Thread(target=self._run, args=(fn, upstream), name=name, daemon=True)
        self._thread.start()

    def _put(self, item: object) -> bool:
        return not self.stop.is_set() and self.queue.put(item, self.stop)

    def _run(self, fn: Callable[[Iterable], Iterator], upstream: Iterable) -> None:
        try:
            for item in fn(upstream):
                if not self._put(item):
                    break
        except BaseException as e:  # noqa: BLE001 - handed to the consumer thread
            self.queue.put(_Failure(e), self.stop)
            return
        # the end marker, stopped or not: a consumer that still waits (live, stopped from
        # outside) then ends
        self.queue.put(_END, self.stop)

    def get(self, timeout: float | None = None) -> object | None:
        """The next item; the end marker (_END) at the end; None after timeout seconds without
        one. A worker's exception is raised here, in the consumer's thread."""
        item = self.queue.get(timeout)
        if isinstance(item, _Failure):
            raise item.exc
        return item

    def __iter__(self) -> Iterator:
        while not self.stop.is_set():
            item = self.get(0.1)
            if item is None:
                continue
            if item is _END:
                return
            yield item

    def close(self, timeout: float = 5) -> None:
        """Stop the worker (it is blocked at most 0.1 s on a full queue) and wait for it."""
        self.stop.set()
        self._thread.join(timeout=timeout)


@dataclass(frozen=True)
class Policy:
    """How run_pipeline's stages meet and how its consumer waits. Files (the default): 16
    items a queue, and a full queue waits (backpressure: memory stays flat, nothing is lost).
    Live: one frame a queue, and a full queue drops its oldest frame (a live source never
    waits for us; on_drop counts them); the consumer wakes every idle_s without a frame
    (on_idle: the input is lost, repeat the last picture) and ends when cancelled() says so."""

    maxsize: int = 16
    drop_oldest: bool = False
    idle_s: float | None = None
    on_idle: Callable[[], None] | None = None
    on_drop: Callable[[], None] | None = None
    stop: threading.Event | None = None  # shared with the caller: set, the stages end
    cancelled: Callable[[], bool] | None = None  # checked before each item (Ctrl-C)
    join_s: float = 5.0  # how long the stages may take to end


FILES = Policy()


def run_pipeline(
    source: Callable[[], Iterable],
    colorize: Callable[[Iterable], Iterable],
    sink: Callable[[object], None],
    policy: Policy = FILES,
) -> bool:
    """The one decode -> colorize -> sink wiring: source() (decoded items, in order) in a
    thread, colorize(items) in another, sink(item) here, for every item in order, each
    stage's exception raised here. -> True when the input ended, False when cancelled. The
    stages are stopped and joined on the way out, on errors too."""
    stop = policy.stop or threading.Event()
    queue = dict(maxsize=policy.maxsize, drop_oldest=policy.drop_oldest, stop=stop, on_drop=policy.on_drop)
    decoded = Stage("decode", lambda _: source(), None, **queue)
    colored = Stage("colorize", colorize, decoded, **queue)
    try:
        while not (policy.cancelled is not None and policy.cancelled()):
            item = colored.get(policy.idle_s)
            if item is None:
                if policy.on_idle is not None:
                    policy.on_idle()
                continue
            if item is _END:
                return True
            sink(item)
        return False
    finally:
        colored.close(policy.join_s)
        decoded.close(policy.join_s)


@dataclass
class StageTimes:
    """Seconds spent in each stage's own work (threads overlap, so these add up to more
    than the wall time on a multi-core machine)."""

    decode: float = 0.0
    model: float = 0.0
    temporal: float = 0.0
    upsample: float = 0.0
    encode: float = 0.0

    def per_frame_ms(self, frames: int) -> dict[str, float]:
        n = max(frames, 1)
        return {k: round(1000 * v / n, 3) for k, v in vars(self).items()}


def timed(items: Iterable, times: StageTimes, field: str) -> Iterator:
    """Yield from items, adding the time spent producing each to times.<field>."""
    it = iter(items)
    while True:
        t = time.perf_counter()
        try:
            item = next(it)
        except StopIteration:
            return
        finally:
            setattr(times, field, getattr(times, field) + time.perf_counter() - t)
        yield item


class NetworkFrames:
    """FrameSequencer's strategy without hints: the network alone on the key frames. The
    strategy for a hint model, hints/tracker.TrackedFrames, has the same four methods."""

    def __init__(self, colorizer: Colorizer, full_range: bool):
        self.colorizer = colorizer
        self.full_range = full_range

    def prepare(self, y8: np.ndarray, index: int, seconds: float, key: bool) -> np.ndarray:
        """A frame's inputs: its (H, W) uint8 luma alone."""
        return y8

    def is_key(self, frame: np.ndarray, key: bool) -> bool:
        return key

    def predict(self, frames: list[np.ndarray]) -> list[np.ndarray]:
        return self.colorizer.predict([self.colorizer.network_input(y, self.full_range) for y in frames])

    def guide(self, frame: np.ndarray) -> np.ndarray | None:
        """The frame's L* guide when prepare made it already; None: made from the prediction."""
        return None


class FrameSequencer:
    """Gray frames in order -> (frame, final a*b* on the network grid) in order.

    Runs the network in batches on key frames (every `keyframe_interval`-th frame; all of
    them when 1), passes every frame through the temporal filter, and lets the filter
    carry colour along the flow to the frames in between, predicting one of those only
    when it must (the first frame, a scene cut). Bidirectional output lags by the
    filter's look-ahead; flush() drains it at the end. What goes into the network is a
    strategy: NetworkFrames, or with user hints hints/tracker.TrackedFrames.
    """

    def __init__(
        self,
        colorizer: Colorizer,
        full_range: bool,
        temporal: str = "off",
        keyframe_interval: int = 1,
        batch: int = 4,
        times: StageTimes | None = None,
        temporal_cfg: TemporalConfig | None = None,
        first_index: int = 0,
        tracker: HintTracker | None = None,
        seconds_of: Callable[[object], float] | None = None,
        shot_memory: ShotMemory | None = None,
    ):
        """first_index: the index of the first frame pushed, when a run starts mid-film
        (shots.py): key frames stay where a run from the start puts them.
        tracker: user hints and reference photos (streamcolor/hints/tracker.py), for a hint
        model: every frame goes through the tracker; key frames and batches as without it.
        seconds_of: item -> its time in seconds (when the hints start and end).
        shot_memory: recurring shots keep their colours (streamcolor/shot_memory.py); it sees
        the temporal filter's predictions, so it needs one."""
        check_keyframe_interval(keyframe_interval, temporal)
        self.frames = (
            TrackedFrames(tracker, colorizer, full_range)
            if tracker is not None
            else NetworkFrames(colorizer, full_range)
        )
        self.seconds_of = seconds_of or (lambda item: 0.0)
        self.colorizer = colorizer
        self.full_range = full_range
        self.temporal = temporal
        self.interval = max(1, keyframe_interval)
        self.batch = batch
        self.times = times or StageTimes()
        self.causal = CausalFilter(temporal_cfg, shot_memory) if temporal == "causal" else None
        self.smoother = BidirectionalFilter(temporal_cfg, shot_memory) if temporal == "bidirectional" else None
        self.waiting: list[tuple[object, np.ndarray, bool]] = []
        self.count = first_index
        self.network_runs = 0

    def _predict(self, frames: list) -> list[np.ndarray]:
        t0 = time.perf_counter()
        out = self.frames.predict(frames)
        self.times.model += time.perf_counter() - t0
        self.network_runs += len(frames)
        return out

    def push(self, item: object, y8: np.ndarray) -> list[tuple[object, np.ndarray, np.ndarray | None]]:
        """-> frames now final: (item, a*b* on the grid, its L* guide, or None when not computed)."""
        key = self.count % self.interval == 0
        self.count += 1
        self.waiting.append((item, y8, key))
        # batch 1 is the latency mode: every frame leaves at once, key frame or not
        if self.batch == 1 or sum(k for _, _, k in self.waiting) >= self.batch:
            return self._run()
        return []

    def flush(self) -> list[tuple[object, np.ndarray, np.ndarray | None]]:
        done = self._run()
        if self.smoother is not None:
            t0 = time.perf_counter()
            done.extend((item, ab, l_lo) for (item, l_lo), ab in self.smoother.flush())
            self.times.temporal += time.perf_counter() - t0
        return done

    def _run(self) -> list[tuple[object, np.ndarray, np.ndarray | None]]:
        """The waiting frames' inputs (the strategy's prepare, every frame in order), the key
        frames predicted in one batch; frames between take the colour the temporal filter
        carries along the flow (and are predicted only at a cut)."""
        t0 = time.perf_counter()
        first = self.count - len(self.waiting)
        inputs = [
            self.frames.prepare(y8, first + i, self.seconds_of(item), k) for i, (item, y8, k) in enumerate(self.waiting)
        ]
        self.times.temporal += time.perf_counter() - t0
        keys = [self.frames.is_key(f, k) for f, (_, _, k) in zip(inputs, self.waiting)]
        keyed = [f for f, k in zip(inputs, keys) if k]
        preds = iter(self._predict(keyed)) if keyed else iter(())
        done: list[tuple[object, np.ndarray, np.ndarray | None]] = []
        for (item, y8, _), f, key in zip(self.waiting, inputs, keys):
            pred = next(preds) if key else functools.partial(lambda g: self._predict([g])[0], f)
            l_lo = self.frames.guide(f)
            if self.temporal == "off":
                done.append((item, pred, l_lo))
                continue
            t0 = time.perf_counter()
            if l_lo is None:
                grid = pred.shape[:2] if key else self.colorizer.output_grid(y8.shape)
                l_lo = self.colorizer.guide_lo(y8, grid, self.full_range)
            if self.causal is not None:
                done.append((item, self.causal(l_lo, pred), l_lo))
            else:  # the guide travels with the item, to be reused by the upsampling
                done.extend((it, ab, lo) for (it, lo), ab in self.smoother.push((item, l_lo), l_lo, pred))
            self.times.temporal += time.perf_counter() - t0
        self.waiting.clear()
        return done


def colorize_items(
    items: Iterable,
    colorizer: Colorizer,
    info: StreamInfo,
    batch: int,
    times: StageTimes,
    temporal: str = "off",
    keyframe_interval: int = 1,
    first_index: int = 0,
    tracker: HintTracker | None = None,
    chroma_shape: tuple[int, int] | None = None,
    depth: int = 8,
    shot_memory: ShotMemory | None = None,
) -> Iterator:
    """Colorize GrayFrames; other items pass through in their place. tracker: user hints and
    reference photos (FrameSequencer). chroma_shape: (Hc, Wc) of the chroma planes to make
    (None: 4:2:0's half size); depth: their bits (above 8 for a deep output, output_plan.VideoPlan).
    shot_memory: recurring shots keep their colours (FrameSequencer).

    A frame leaves once its a*b* is final (with the bidirectional filter, once its
    look-ahead frames have been seen); items behind it wait, so output order is input order."""
    # OpenCV's own thread pool fights ONNX Runtime and libx264 for the same cores; the
    # per-frame OpenCV work here is small enough to run on this thread alone.
    cv2.setNumThreads(1)
    pending: deque = deque()  # every item, in order, until it can leave
    chroma_shape = chroma_shape or ((info.height + 1) // 2, (info.width + 1) // 2)
    rate = float(info.average_rate or 25)

    def seconds_of(f: GrayFrame) -> float:
        return float(f.pts * info.time_base) if f.pts is not None and info.time_base else f.index / rate

    seq = FrameSequencer(
        colorizer,
        info.full_range,
        temporal,
        keyframe_interval,
        batch,
        times,
        first_index=first_index,
        tracker=tracker,
        seconds_of=seconds_of,
        shot_memory=shot_memory,
    )

    def release(ready: list[tuple[GrayFrame, np.ndarray, np.ndarray | None]]) -> Iterator:
        t0 = time.perf_counter()
        for f, ab_lo, l_lo in ready:
            if f.interlaced:
                f.chroma = colorizer.field_chroma_planes(
                    f.y8, ab_lo, chroma_shape, info.full_range, info.matrix, depth=depth
                )
            else:
                f.chroma = colorizer.chroma_planes(
                    f.y8, ab_lo, chroma_shape, info.full_range, info.matrix, l_lo, depth=depth
                )
        times.upsample += time.perf_counter() - t0
        while pending and not (isinstance(pending[0], GrayFrame) and pending[0].chroma is None):
            yield pending.popleft()

    for item in items:
        pending.append(item)
        if isinstance(item, GrayFrame):
            yield from release(seq.push(item, item.y8))
    yield from release(seq.flush())
