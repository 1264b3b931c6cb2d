"""A live run's figures: per-stage latency samples, frames in and out, drops, and the table printed at the end."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from streamcolor.capture import LiveFrame


class LatencyStats:
    """Per-stage latency samples (bounded: memory stays flat on an endless stream)."""

    STAGES = ("wait", "colorize", "output", "total")

    def __init__(self, keep: int = 100_000):
        self.samples = {s: deque(maxlen=keep) for s in self.STAGES}
        self.out_times: deque = deque(maxlen=60)
        self.recent_total: deque = deque(maxlen=300)  # for the preview: copying 100k samples a frame is not
        self.indices: deque = deque(maxlen=keep)  # input index of each output frame: drops show as gaps
        self.frames_out = 0
        self.held = 0
        self.dropped = 0  # frames a full queue discarded (Policy.on_drop: from two threads)
        self._drops = threading.Lock()

    def drop(self) -> None:
        with self._drops:
            self.dropped += 1

    def add(self, f: LiveFrame, t_out: float) -> None:
        s = self.samples
        s["wait"].append(f.t_start - f.t_arrival)  # queued before colorizing
        s["colorize"].append(f.t_colored - f.t_start)  # model + temporal filter + chroma
        s["output"].append(t_out - f.t_colored)  # queued before output, encoded, sent
        s["total"].append(t_out - f.t_arrival)
        self.recent_total.append(t_out - f.t_arrival)
        self.out_times.append(t_out)
        self.indices.append(f.index)
        self.frames_out += 1

    def fps(self) -> float:
        t = self.out_times
        return (len(t) - 1) / (t[-1] - t[0]) if len(t) > 1 and t[-1] > t[0] else 0.0

    def percentiles(self, skip: int = 0) -> dict[str, dict[str, float]]:
        """{stage: {p50_ms, p99_ms, max_ms}} over the samples after the first `skip`."""
        out = {}
        for name, d in self.samples.items():
            v = np.array(list(d)[skip:], np.float64) * 1000
            if v.size:
                out[name] = {
                    "p50_ms": round(float(np.percentile(v, 50)), 2),
                    "p99_ms": round(float(np.percentile(v, 99)), 2),
                    "max_ms": round(float(v.max()), 2),
                }
        return out


@dataclass
class LiveSummary:
    frames_in: int
    frames_out: int
    dropped: int  # frames a live source delivered that were never output
    held: int  # repeats of the last frame while the input was lost
    reconnects: int
    seconds: float
    latency: dict[str, dict[str, float]]
    interrupted: bool
    width: int
    height: int
    stats: LatencyStats = field(repr=False, default_factory=LatencyStats)
    signum: int = 0  # the signal that stopped the run (SIGINT, SIGTERM), 0 when the input ended or stop was set
    lost_at_end: bool = False  # the input was away when the run stopped (reconnecting)

    @property
    def fps(self) -> float:
        return self.frames_out / self.seconds if self.seconds > 0 else 0.0


def format_summary(s: LiveSummary) -> str:
    """The table printed when a live run stops."""
    lines = [
        f"{s.frames_out} frames out of {s.frames_in} in {s.seconds:.1f} s ({s.fps:.1f} fps), "
        f"{s.dropped} dropped, {s.reconnects} reconnect(s), {s.held} held"
        + (", input lost and not back when stopped" if s.lost_at_end else "")
        + (" (stopped by Ctrl-C)" if s.interrupted else ""),
        f"{'latency (ms)':<14}{'p50':>8}{'p99':>8}{'max':>8}",
    ]
    for stage, v in s.latency.items():
        lines.append(f"{stage:<14}{v['p50_ms']:>8.1f}{v['p99_ms']:>8.1f}{v['max_ms']:>8.1f}")
    return "\n".join(lines)
