"""Threaded stages joined by bounded queues: decode -> colorize (batched) -> encode.

Files apply backpressure (a full queue blocks its producer), so memory stays flat
however long the input is. Order is preserved end to end; an exception in a worker is
carried to the consumer and raised there (detectron2 `AsyncPredictor`'s pattern).
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from streamcolor.colorizer import Colorizer
from streamcolor.source import GrayFrame, StreamInfo
from streamcolor.temporal import BidirectionalFilter, CausalFilter, TemporalConfig

_END = object()


@dataclass
class _Failure:
    exc: BaseException


class Stage:
    """Runs fn(iterable) -> iterator in a thread; iterate the Stage to consume its output."""

    def __init__(self, name: str, fn: Callable[[Iterable], Iterator], upstream: Iterable, maxsize: int):
        self.name = name
        self.queue: queue.Queue = queue.Queue(maxsize)
        self.stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(fn, upstream), name=name, daemon=True)
        self._thread.start()

    def _put(self, item: object) -> bool:
        while not self.stop.is_set():
            try:
                self.queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, fn: Callable[[Iterable], Iterator], upstream: Iterable) -> None:
        try:
            for item in fn(upstream):
                if not self._put(item):
                    return
            self._put(_END)
        except BaseException as e:  # noqa: BLE001 - handed to the consumer thread
            self._put(_Failure(e))

    def __iter__(self) -> Iterator:
        while True:
            item = self.queue.get()
            if item is _END:
                return
            if isinstance(item, _Failure):
                raise item.exc
            yield item

    def close(self) -> None:
        """Stop the worker (it is blocked at most 0.1 s on a full queue) and wait for it."""
        self.stop.set()
        self._thread.join(timeout=5)


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


def colorize_items(
    items: Iterable,
    colorizer: Colorizer,
    info: StreamInfo,
    batch: int,
    times: StageTimes,
    temporal: str = "off",
    temporal_cfg: TemporalConfig | None = None,
) -> Iterator:
    """Colorize GrayFrames in batches; other items pass through in their place.

    With temporal='bidirectional' a frame leaves only once its look-ahead frames have
    been predicted; items behind it wait, so output order is input order."""
    # OpenCV's own thread pool fights ONNX Runtime and libx264 for the same cores; the
    # per-frame OpenCV work here is small enough to run on this thread alone.
    cv2.setNumThreads(1)
    pending: deque = deque()  # every item, in order, until it can leave
    waiting: list[GrayFrame] = []  # frames not yet through the network
    ready: list[tuple[GrayFrame, np.ndarray]] = []  # frames with final a*b*, not yet upsampled
    chroma_shape = ((info.height + 1) // 2, (info.width + 1) // 2)
    causal = CausalFilter(temporal_cfg) if temporal == "causal" else None
    smoother = BidirectionalFilter(temporal_cfg) if temporal == "bidirectional" else None

    def predict() -> None:
        t0 = time.perf_counter()
        abs_lo = colorizer.predict([colorizer.network_input(f.y8, info.full_range) for f in waiting])
        t1 = time.perf_counter()
        times.model += t1 - t0
        for f, ab_lo in zip(waiting, abs_lo):
            if temporal == "off":
                ready.append((f, ab_lo))
                continue
            l_lo = colorizer.guide_lo(f.y8, ab_lo.shape[:2], info.full_range)
            if causal is not None:
                ready.append((f, causal(l_lo, ab_lo)))
            else:
                ready.extend(smoother.push(f, l_lo, ab_lo))
        times.temporal += time.perf_counter() - t1
        waiting.clear()

    def release() -> Iterator:
        t0 = time.perf_counter()
        for f, ab_lo in ready:
            f.chroma = colorizer.chroma_planes(f.y8, ab_lo, chroma_shape, info.full_range, info.matrix)
        ready.clear()
        times.upsample += time.perf_counter() - t0
        while pending and not (isinstance(pending[0], GrayFrame) and pending[0].chroma is None):
            yield pending.popleft()

    for item in items:
        pending.append(item)
        if isinstance(item, GrayFrame):
            waiting.append(item)
            if len(waiting) >= batch:
                predict()
                yield from release()
    if waiting:
        predict()
    if smoother is not None:
        ready.extend(smoother.flush())
    yield from release()
