"""Threaded stages joined by bounded queues: decode -> colorize (batched) -> encode.

Files apply backpressure (a full queue blocks its producer), so memory stays flat
however long the input is. Order is preserved end to end; an exception in a worker is
carried to the consumer and raised there (detectron2 `AsyncPredictor`'s pattern).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import cv2

from streamcolor.colorizer import Colorizer
from streamcolor.source import GrayFrame, StreamInfo

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


def colorize_items(items: Iterable, colorizer: Colorizer, info: StreamInfo, batch: int, times: StageTimes) -> Iterator:
    """Colorize GrayFrames in batches; other items pass through in their place."""
    # OpenCV's own thread pool fights ONNX Runtime and libx264 for the same cores; the
    # per-frame OpenCV work here is small enough to run on this thread alone.
    cv2.setNumThreads(1)
    pending: list = []
    frames: list[GrayFrame] = []
    chroma_shape = ((info.height + 1) // 2, (info.width + 1) // 2)

    def flush() -> Iterator:
        if frames:
            t0 = time.perf_counter()
            ab = colorizer.predict([colorizer.network_input(f.y8, info.full_range) for f in frames])
            t1 = time.perf_counter()
            for f, ab_lo in zip(frames, ab):
                f.chroma = colorizer.chroma_planes(f.y8, ab_lo, chroma_shape, info.full_range, info.matrix)
            times.model += t1 - t0
            times.upsample += time.perf_counter() - t1
            frames.clear()
        yield from pending
        pending.clear()

    for item in items:
        pending.append(item)
        if isinstance(item, GrayFrame):
            frames.append(item)
            if len(frames) >= batch:
                yield from flush()
    yield from flush()
