"""Peak memory while colorizing a long input that is never stored: RSS must stay flat.

    python -m benchmarks.memory --minutes 2 --height 1080      # about 2 min of 1080p
    python -m benchmarks.memory --minutes 60                   # the hour-long reel

A child process encodes synthetic moving video (libx264 ultrafast, MPEG-TS) into a named
pipe; `colorize_video` reads the pipe like any file and writes its output to a temporary
file that is deleted afterwards. The resident set size of this process is sampled every
half second. Reported: peak RSS, RSS after the first 10% of frames, and after the last
10% (flat means the two match). Results: benchmarks/results/memory_<date>.json.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import tempfile
import threading
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from benchmarks.common import save_result
from streamcolor.api import ColorizeConfig, colorize_video


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def write_synthetic(path: str, frames: int, width: int, height: int, rate: int) -> None:
    """Gray moving gradients and boxes, encoded fast into `path` (a FIFO)."""
    yy, xx = np.mgrid[0:height, 0:width]
    base = ((xx * 255) // max(1, width - 1)).astype(np.uint8)
    with av.open(path, "w", format="mpegts") as c:
        s = c.add_stream("libx264", rate=rate)
        s.width, s.height, s.pix_fmt = width, height, "yuv420p"
        s.options = {"preset": "ultrafast", "tune": "zerolatency"}
        tb = Fraction(1, rate)
        for i in range(frames):
            y = np.roll(base, i * 4, axis=1)
            x0 = (i * 8) % (width - height // 4)
            y[height // 3 : height // 3 + height // 4, x0 : x0 + height // 4] = 40
            f = av.VideoFrame(width, height, "yuv420p")
            for p, val in zip(f.planes, (y, 128, 128)):
                np.frombuffer(p, np.uint8).reshape(p.height, p.line_size)[:, : p.width] = val
            f.pts, f.time_base = i, tb
            for pkt in s.encode(f):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)


def run(minutes: float, height: int, rate: int = 25) -> dict:
    width = int(round(height * 16 / 9 / 2)) * 2
    frames = max(1, int(minutes * 60 * rate))
    samples: list[tuple[float, float]] = []
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            samples.append((time.perf_counter(), rss_mb()))
            time.sleep(0.5)

    progress: list[tuple[int, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        fifo = os.path.join(tmp, "in.ts")
        os.mkfifo(fifo)
        writer = mp.get_context("spawn").Process(target=write_synthetic, args=(fifo, frames, width, height, rate))
        writer.start()
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        start = time.perf_counter()
        try:
            summary = colorize_video(
                fifo,
                Path(tmp) / "out.mp4",
                ColorizeConfig(),
                on_progress=lambda p: progress.append((p.frames, rss_mb())) if p.frames % 25 == 0 else None,
                warn=lambda m: None,
            )
        finally:
            done.set()
            writer.join(timeout=30)
    rss = [r for _, r in samples]
    tenth = max(1, len(progress) // 10)
    early = float(np.mean([r for _, r in progress[:tenth]])) if progress else 0.0
    late = float(np.mean([r for _, r in progress[-tenth:]])) if progress else 0.0
    return {
        "size": [width, height],
        "frames": summary.frames,
        "seconds": round(time.perf_counter() - start, 1),
        "fps": round(summary.fps, 2),
        "peak_rss_mb": round(max(rss), 1),
        "rss_first_10pct_mb": round(early, 1),
        "rss_last_10pct_mb": round(late, 1),
        "rss_samples_mb": [round(r, 1) for r in rss[:: max(1, len(rss) // 200)]],
    }


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=2.0)
    ap.add_argument("--height", type=int, default=1080)
    ap.add_argument("--out", type=Path)
    a = ap.parse_args(argv)
    row = run(a.minutes, a.height)
    print(
        f"{row['size'][0]}x{row['size'][1]}, {row['frames']} frames in {row['seconds']} s: peak RSS "
        f"{row['peak_rss_mb']} MB; {row['rss_first_10pct_mb']} MB over the first 10% of frames, "
        f"{row['rss_last_10pct_mb']} MB over the last 10%"
    )
    result = {"run": row}
    print(f"wrote {save_result('memory', result, a.out)}")
    return result


if __name__ == "__main__":
    main()
