"""Throughput of `streamcolor batch` beside a plain loop of single runs, in one run.

    python -m benchmarks.batch_speed                        # 8 clips of 854x480, 120 frames each
    python -m benchmarks.batch_speed --frames 240 --repeats 3
    python -m benchmarks.batch_speed --modes loop_api batch:1 batch:2 batch:4 ray

The clips are the shared colour clips turned gray and scaled (benchmarks.video_speed's
make_gray_input), cycled to make `--clips` files. Modes, each over the same clips:
  loop_cli   a shell loop of `streamcolor video IN OUT` (a process, an engine per file)
  loop_api   a Python loop of colorize_video with one engine (the best a single process does)
  batch:N    `streamcolor batch` with N local worker processes (process start and engine
             load inside the timing, as a user sees it)
  ray        `streamcolor batch --ray` on a local Ray started before the timing (as a
             cluster is, by `ray start`), one CPU per task
Modes alternate within each repeat, in a rotated order, so a background load spreads over
all of them; the best of the repeats is reported beside every repeat. Files per hour and
frames per second are over the whole batch's wall time. Results go to
benchmarks/results/batch_speed_<date>.json with the machine and library versions.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import SHARED, save_result
from benchmarks.video_speed import make_gray_input
from streamcolor.api import ColorizeConfig, colorize_video, make_colorizer
from streamcolor.batch import BatchConfig, run_batch

DEFAULT_CLIPS = [SHARED / "video" / n for n in ("dog_720p_audio.mp4", "cups_720p_audio.mp4", "juggle_720p.mp4")]


def make_inputs(sources: list[Path], count: int, height: int, frames: int, folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    made: dict[Path, Path] = {}
    clips = []
    for i in range(count):
        src = sources[i % len(sources)]
        if src not in made:
            made[src] = make_gray_input(src, folder / f"{src.stem}_gray.mp4", height, frames)
        clip = folder / f"reel{i:02d}.mp4"
        shutil.copy(made[src], clip)
        clips.append(clip)
    for p in made.values():
        p.unlink()
    return clips


def frames_of(clips: list[Path]) -> int:
    import av

    total = 0
    for c in clips:
        with av.open(str(c)) as f:
            total += sum(1 for _ in f.decode(video=0))
    return total


def run_mode(mode: str, clips: list[Path], out: Path, cfg: ColorizeConfig, colorizer) -> float:
    """Wall seconds for the whole set of clips in one mode."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    start = time.perf_counter()
    if mode == "loop_cli":
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
        for c in clips:
            subprocess.run(
                [sys.executable, "-m", "streamcolor", "video", str(c), str(out / c.name), "--quiet"],
                check=True,
                env=env,
            )
    elif mode == "loop_api":
        for c in clips:
            colorize_video(c, out / c.name, cfg, warn=lambda m: None, colorizer=colorizer)
    else:
        workers = int(mode.split(":")[1]) if mode.startswith("batch:") else None
        batch = BatchConfig(colorize=cfg, workers=workers, ray="auto" if mode == "ray" else None)
        summary = run_batch([str(c) for c in clips], out, batch)
        if summary.failed:
            raise RuntimeError(f"{mode}: {summary.failed[0].input}: {summary.failed[0].error}")
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clip", type=Path, nargs="+", default=DEFAULT_CLIPS, help="colour clips, cycled")
    ap.add_argument("--clips", type=int, default=8, help="files in the batch")
    ap.add_argument("--frames", type=int, default=120, help="frames per file")
    ap.add_argument("--height", type=int, default=480)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--modes", nargs="+", default=["loop_cli", "loop_api", "batch:1", "batch:2", "ray"])
    ap.add_argument("--out", type=Path, help="JSON path (default benchmarks/results/batch_speed_<date>.json)")
    a = ap.parse_args(argv)
    if "ray" in a.modes:
        import ray

        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    load_at_start = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    cfg = ColorizeConfig()
    colorizer = make_colorizer(cfg) if "loop_api" in a.modes else None
    seconds: dict[str, list[float]] = {m: [] for m in a.modes}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            clips = make_inputs(a.clip, a.clips, a.height, a.frames, Path(tmp) / "in")
            frames = frames_of(clips)
            for r in range(a.repeats):
                order = a.modes[r % len(a.modes) :] + a.modes[: r % len(a.modes)]
                for mode in order:
                    seconds[mode].append(run_mode(mode, clips, Path(tmp) / "out", cfg, colorizer))
                    print(f"repeat {r + 1} {mode}: {seconds[mode][-1]:.2f} s", flush=True)
    finally:
        if "ray" in a.modes:
            ray.shutdown()
    rows = {}
    for mode, secs in seconds.items():
        best = min(secs)
        rows[mode] = {
            "seconds": round(best, 3),
            "files_per_hour": round(len(clips) * 3600 / best, 1),
            "fps": round(frames / best, 2),
            "all_seconds": [round(s, 3) for s in secs],
            "median_seconds": round(statistics.median(secs), 3),
        }
    loops = [m for m in ("loop_cli", "loop_api") if m in rows]
    best_loop = min((rows[m]["seconds"] for m in loops), default=None)
    for row in rows.values():
        row["x_best_single_loop"] = round(best_loop / row["seconds"], 3) if best_loop else None
    result = {
        "clips": len(clips),
        "frames": frames,
        "height": a.height,
        "sources": [p.name for p in a.clip],
        "repeats": a.repeats,
        "modes": rows,
        "load_average_at_start": load_at_start,  # 1/5/15-minute: other work on the machine meanwhile
        "load_average_at_end": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }
    if "ray" in a.modes:
        import ray

        result["ray"] = ray.__version__
    out = save_result("batch_speed", result, a.out)
    for mode, row in rows.items():
        print(
            f"{mode:9s} {row['seconds']:7.2f} s  {row['files_per_hour']:8.1f} files/h  {row['fps']:6.1f} fps  "
            f"x{row['x_best_single_loop']} of the best single loop"
        )
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
