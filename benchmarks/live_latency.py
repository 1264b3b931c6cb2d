"""Live latency: a 640x480 MPEG-TS stream over UDP on 127.0.0.1 -> `streamcolor stream` -> UDP.

    python -m benchmarks.live_latency                          # 20 s at 30 fps, 640x480
    python -m benchmarks.live_latency --seconds 60 --keyframe-interval 1 2
    python -m benchmarks.live_latency --model streamcolor/models/student.onnx old/student.onnx   # side by side

A sender process (`--send`) plays a shared colour clip, turned gray and scaled, in real
time as H.264 (ultrafast, zero-latency) MPEG-TS; the receiver runs the live pipeline and
sends its output on to another UDP port. Latency is from a packet's arrival to its
colorized frame leaving the encoder (the network and the sender are excluded), per stage,
p50/p99, over the steady state (the first --warmup seconds are left out); frames dropped
in the steady state are the gaps in the output's frame numbers. The sender shares this
machine's cores, so the figures are a little pessimistic for a real camera.
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from benchmarks.common import SHARED, save_result
from streamcolor.capture import SourceSpec
from streamcolor.config import LiveConfig
from streamcolor.live import run_live

DEFAULT_CLIP = SHARED / "video" / "dog_720p_audio.mp4"


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clip_frames(clip: Path, width: int, height: int, limit: int = 300) -> list[np.ndarray]:
    """Up to `limit` frames of clip as (height, width) uint8 gray, decoded once."""
    frames = []
    with av.open(str(clip)) as c:
        for f in c.decode(video=0):
            frames.append(cv2.resize(f.to_ndarray(format="gray"), (width, height), interpolation=cv2.INTER_AREA))
            if len(frames) >= limit:
                break
    return frames


def send_mpegts(url: str, frames: Iterator[np.ndarray], fps: int, stop: threading.Event | None = None) -> int:
    """Send gray (H, W) or RGB (H, W, 3) uint8 frames as a live H.264 MPEG-TS stream,
    paced at fps. Returns the number of frames sent."""
    stop = stop or threading.Event()
    n = 0
    with av.open(url, "w", format="mpegts") as c:
        v = None
        start = time.perf_counter()
        for img in frames:
            if stop.is_set():
                break
            if v is None:
                v = c.add_stream("libx264", rate=fps)
                v.height, v.width = img.shape[:2]
                v.pix_fmt = "yuv420p"
                v.options = {"preset": "ultrafast", "tune": "zerolatency", "g": str(fps)}
            f = av.VideoFrame.from_ndarray(img, format="gray" if img.ndim == 2 else "rgb24")
            f.pts, f.time_base = n, Fraction(1, fps)
            for p in v.encode(f):
                c.mux(p)
            n += 1
            delay = start + n / fps - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        if v is not None:
            for p in v.encode():
                c.mux(p)
    return n


def _loop(frames: list[np.ndarray], count: int) -> Iterator[np.ndarray]:
    for i in range(count):
        # play forward then backward so the loop point is not a scene cut
        period = 2 * len(frames) - 2 if len(frames) > 1 else 1
        k = i % period
        yield frames[k if k < len(frames) else period - k]


def measure(args: argparse.Namespace, keyframe_interval: int, model: Path | None = None) -> dict:
    port_in, port_out = free_udp_port(), free_udp_port()
    total = args.warmup + args.seconds
    sender = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "benchmarks.live_latency",
            "--send",
            f"udp://127.0.0.1:{port_in}?pkt_size=1316",
            "--clip",
            str(args.clip),
            "--width",
            str(args.width),
            "--height",
            str(args.height),
            "--fps",
            str(args.fps),
            "--seconds",
            str(total),
        ],
        cwd=Path(__file__).resolve().parents[1],
    )
    stop = threading.Event()
    timer = threading.Timer(total + 1.5, stop.set)  # the sender has finished by then
    timer.start()
    try:
        extra = {"model": model} if model else {}
        cfg = LiveConfig(keyframe_interval=keyframe_interval, read_timeout=1.0, threads=args.threads, **extra)
        summary = run_live(
            SourceSpec(f"udp://127.0.0.1:{port_in}"),
            f"udp://127.0.0.1:{port_out}?pkt_size=1316",
            cfg,
            stop=stop,
            warn=lambda m: None,
        )
    finally:
        timer.cancel()
        sender.wait(timeout=30)
    st = summary.stats
    skip = int(args.warmup * args.fps)
    idx = list(st.indices)[skip:]
    steady_drops = (idx[-1] - idx[0] + 1 - len(idx)) if idx else 0
    return {
        "model": str(model) if model else "shipped default",
        "keyframe_interval": keyframe_interval,
        "sent_frames": int(total * args.fps),
        "frames_in": summary.frames_in,
        "frames_out": summary.frames_out,
        "dropped_total": summary.dropped,
        "dropped_steady_state": steady_drops,
        "steady_frames": len(idx),
        "latency_ms": st.percentiles(skip=skip),
    }


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clip", type=Path, default=DEFAULT_CLIP)
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--height", type=int, default=480)
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--seconds", type=float, default=20.0, help="steady-state seconds measured")
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--keyframe-interval", type=int, nargs="+", default=[2])
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--model", type=Path, nargs="+", default=[None], help="ONNX models measured one after another")
    ap.add_argument("--send", help=argparse.SUPPRESS)  # internal: be the sender process
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    if args.send:
        frames = clip_frames(args.clip, args.width, args.height)
        send_mpegts(args.send, _loop(frames, int(args.seconds * args.fps)), args.fps)
        return {}
    runs = []
    for model in args.model:
        for k in args.keyframe_interval:
            row = measure(args, k, model)
            runs.append(row)
            lat = row["latency_ms"].get("total", {})
            print(
                f"{row['model']} k={k}: {row['frames_out']}/{row['sent_frames']} frames out, steady-state drops "
                f"{row['dropped_steady_state']}, latency p50 {lat.get('p50_ms')} ms, p99 {lat.get('p99_ms')} ms"
            )
    result = {
        "size": [args.width, args.height],
        "fps": args.fps,
        "seconds": args.seconds,
        "clip": args.clip.name,
        "runs": runs,
    }
    path = save_result("live_latency", result, args.out)
    print(f"saved {path}")
    return result


if __name__ == "__main__":
    main()
