"""`streamcolor bench`: a quick speed check on the user's own machine (well under a minute).

Model only (the engine alone, at the network input size of an 854x480 frame) and end to
end at 480p, 720p and 1080p on a synthetic gray clip made here, beside a transcode-only
pass with the same decoder, encoder settings and threads (the floor no colorizer can
beat). benchmarks/ holds the full, rerunnable measurements; this is the short version.
"""

from __future__ import annotations

import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from streamcolor.api import ColorizeConfig, colorize_video, describe, make_colorizer
from streamcolor.memory import keep_frame_buffers
from streamcolor.output_plan import EncodeOptions
from streamcolor.pipeline import StageTimes, run_pipeline, timed
from streamcolor.sequence import open_source
from streamcolor.sink import VideoSink
from streamcolor.source import GrayFrame


def synthetic_clip(path: Path, width: int, height: int, frames: int, rate: int = 30) -> Path:
    """A gray H.264 clip with texture and motion (not trivially compressible)."""
    rng = np.random.default_rng(0)
    texture = rng.integers(0, 48, (height, width + frames * 4), dtype=np.uint8)
    sky = np.linspace(200, 120, height // 2, dtype=np.float32)[:, None]
    with av.open(str(path), "w") as c:
        v = c.add_stream("libx264", rate=rate)
        v.width, v.height, v.pix_fmt = width, height, "yuv420p"
        v.options = {"preset": "ultrafast", "crf": "20"}
        for i in range(frames):
            y = np.empty((height, width), np.uint8)
            y[: height // 2] = sky.astype(np.uint8)
            y[height // 2 :] = 60 + texture[height // 2 :, i * 4 : i * 4 + width]
            x0 = (i * width // frames) % (width - width // 5)
            y[height // 3 : height // 3 + height // 4, x0 : x0 + width // 5] = 90
            f = av.VideoFrame(width, height, "yuv420p")
            for plane, value in zip(f.planes, (y, 128, 128)):
                np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)[:, : plane.width] = value
            f.pts, f.time_base = i, Fraction(1, rate)
            for pkt in v.encode(f):
                c.mux(pkt)
        for pkt in v.encode():
            c.mux(pkt)
    return path


def transcode_only(src: Path | str, out: Path, encode: EncodeOptions) -> tuple[int, float, StageTimes]:
    """Decode + encode with the pipeline's own source, sink and threads (run_pipeline); no
    model: neutral chroma in place of the colour. -> (frames, seconds, per-stage times)."""
    keep_frame_buffers()  # same allocator settings as colorize_video
    start = time.perf_counter()
    times = StageTimes()
    with open_source(src) as source:  # a file, or an image sequence (benchmarks/sequence_speed.py)
        info = source.info
        sink = VideoSink(out, info, encode, warn=lambda m: None)
        reencode = sink.plan_streams()
        source.keep_depth = sink.plan.depth > 8  # a deep output's luma, as colorize_video does

        def neutral_chroma(items):
            """The colorize stage's place: every frame gets neutral chroma, nothing else."""
            neutral = None
            for item in items:
                if isinstance(item, GrayFrame):
                    if neutral is None:
                        depth = sink.plan.depth
                        shape = sink.plan.chroma_shape(info.width, info.height)
                        shape = shape or ((info.height + 1) // 2, (info.width + 1) // 2)
                        dtype = np.uint16 if depth > 8 else np.uint8
                        mid = 1 << (depth - 1)
                        neutral = (np.full(shape, mid, dtype), np.full(shape, mid, dtype))
                    item.chroma = neutral
                yield item

        def write(item) -> None:
            t = time.perf_counter()
            sink.write(item)
            times.encode += time.perf_counter() - t

        with sink:
            run_pipeline(lambda: timed(source.items(reencode), times, "decode"), neutral_chroma, write)
    return sink.frames, time.perf_counter() - start, times


def model_only(colorizer, shape: tuple[int, int], batch: int, seconds: float) -> float:
    """Median ms per frame of the engine alone on (batch, 1, h, w) inputs, after warm-up."""
    x = np.random.default_rng(0).random((batch, 1, *shape), dtype=np.float32) * 2 - 1
    for _ in range(3):
        colorizer.engine.run(x)
    times, start = [], time.perf_counter()
    while len(times) < 5 or (time.perf_counter() - start < seconds and len(times) < 200):
        t = time.perf_counter()
        colorizer.engine.run(x)
        times.append(time.perf_counter() - t)
    return 1000 * statistics.median(times) / batch


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def run_bench(
    cfg: ColorizeConfig,
    heights: tuple[int, ...] = (480, 720, 1080),
    frames: int = 48,
    print_line: Callable[[str], None] = print,
) -> dict:
    colorizer = make_colorizer(cfg)
    print_line(f"streamcolor bench: {cpu_name()}, {os.cpu_count()} cores, backend {describe(colorizer)}")
    shape = colorizer.card.input_size(480, 854)
    b1 = model_only(colorizer, shape, 1, 2.0)
    b4 = model_only(colorizer, shape, cfg.batch, 2.0)
    print_line(
        f"model only, {shape[1]}x{shape[0]} input: {b1:.2f} ms ({1000 / b1:.0f} fps) at batch 1, "
        f"{b4:.2f} ms/frame ({1000 / b4:.0f} fps) at batch {cfg.batch}"
    )
    rows = []
    print_line(f"{'end to end':<12}{'streamcolor':>14}{'transcode-only':>17}{'ratio':>8}{'x real time (30 fps)':>23}")
    with tempfile.TemporaryDirectory() as tmp:
        for h in heights:
            w = int(round(h * 16 / 9 / 2)) * 2
            clip = synthetic_clip(Path(tmp) / f"in_{h}.mp4", w, h, frames)
            n, secs, _ = transcode_only(clip, Path(tmp) / "t.mp4", cfg.encode)
            floor = n / secs
            s = colorize_video(clip, Path(tmp) / "c.mp4", cfg, warn=lambda m: None, colorizer=colorizer, overwrite=True)
            rows.append({"size": [w, h], "fps": s.fps, "transcode_fps": floor})
            size = f"{w}x{h}"
            print_line(f"{size:<12}{s.fps:>10.1f} fps{floor:>13.1f} fps{s.fps / floor:>8.2f}{s.fps / 30:>20.1f}x")
    return {"model_ms_batch1": b1, f"model_ms_per_frame_batch{cfg.batch}": b4, "end_to_end": rows}
