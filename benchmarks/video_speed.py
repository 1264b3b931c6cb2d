"""End-to-end speed of `streamcolor video` beside a transcode-only pass, in one run.

    python -m benchmarks.video_speed                       # 854x480 from the shared clips
    python -m benchmarks.video_speed --height 720 --repeats 3
    python -m benchmarks.video_speed --clip ../shared/data/video/{dog_720p_audio,cups_720p_audio,juggle_720p}.mp4
    python -m benchmarks.video_speed --model streamcolor/models/student.onnx old/student.onnx   # side by side

The input is a shared colour clip turned gray and scaled (854x480 by default), encoded
H.264. Both passes use the same decoder, the same threads and the same libx264 settings;
the transcode-only pass writes neutral chroma instead of running the model, so the
ratio is the cost of colorizing. Passes alternate and the median is reported, with the
per-stage split (seconds of each stage's own work per frame; stages overlap in threads).
Results go to benchmarks/results/video_speed_<date>.json with the machine and versions.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import av
import numpy as np

from benchmarks.common import SHARED, save_result
from streamcolor.api import ColorizeConfig, colorize_video, make_colorizer
from streamcolor.bench import transcode_only
from streamcolor.output_plan import EncodeOptions

DEFAULT_CLIP = SHARED / "video" / "dog_720p_audio.mp4"


def make_gray_input(src: Path, dst: Path, height: int, max_frames: int = 0) -> Path:
    """Gray, scaled copy of src (audio kept) as H.264 yuv420p, crf 18."""
    with av.open(str(src)) as i, av.open(str(dst), "w") as o:
        vin = i.streams.video[0]
        w = int(round(vin.codec_context.width * height / vin.codec_context.height / 2)) * 2
        v = o.add_stream("libx264", rate=vin.average_rate or 25)
        v.width, v.height, v.pix_fmt = w, height, "yuv420p"
        v.time_base = vin.time_base
        v.codec_context.time_base = vin.time_base
        v.options = {"crf": "18", "preset": "veryfast"}
        audio = [s for s in i.streams.audio]
        aout = {s.index: o.add_stream_from_template(s) for s in audio}
        n = 0
        for packet in i.demux(vin, *audio):
            if packet.stream.index in aout:
                if packet.size:
                    packet.stream = aout[packet.stream.index]
                    o.mux(packet)
                continue
            for f in packet.decode():
                if max_frames and n >= max_frames:
                    break
                g = f.reformat(width=w, height=height, format="yuv420p")
                for plane in g.planes[1:]:
                    np.frombuffer(plane, np.uint8)[:] = 128
                g.pts, g.time_base = f.pts, vin.time_base
                for p in v.encode(g):
                    o.mux(p)
                n += 1
        for p in v.encode():
            o.mux(p)
    return dst


def run(
    clip: Path,
    height: int,
    repeats: int,
    max_frames: int,
    batch: int,
    preset: str,
    workdir: Path,
    backend: str = "auto",
    precision: str | None = None,
    models: list[Path] | None = None,
) -> list[dict]:
    """One row per model (default: the shipped one); the passes of every model and the
    transcode-only pass alternate within each repeat, so the ratios share the same conditions."""
    gray = make_gray_input(clip, workdir / f"gray_{height}p.mp4", height, max_frames)
    encode = EncodeOptions(preset=preset)
    cfgs, colorizers = [], []
    for model in models or [None]:
        extra = {"model": model} if model else {}
        cfg = ColorizeConfig(batch=batch, encode=encode, backend=backend, precision=precision, **extra)
        colorizer = make_colorizer(cfg)
        if colorizer.engine.name in ("torch", "tensorrt"):  # compiled per input shape: not timed
            colorize_video(gray, workdir / "colour.mp4", cfg, warn=lambda m: None, colorizer=colorizer, overwrite=True)
        cfgs.append(cfg)
        colorizers.append(colorizer)
    base = []
    ours: list[list[float]] = [[] for _ in cfgs]
    stage_ms: list[list[dict]] = [[] for _ in cfgs]
    used = [""] * len(cfgs)
    for _ in range(repeats):
        n, secs, _t = transcode_only(gray, workdir / "transcode.mp4", encode)
        base.append(n / secs)
        for i, (cfg, colorizer) in enumerate(zip(cfgs, colorizers)):
            s = colorize_video(
                gray, workdir / "colour.mp4", cfg, warn=lambda m: None, colorizer=colorizer, overwrite=True
            )
            ours[i].append(s.fps)
            used[i] = s.backend
            stage_ms[i].append(s.times.per_frame_ms(s.frames))
    with av.open(str(gray)) as c:
        w, h = c.streams.video[0].codec_context.width, c.streams.video[0].codec_context.height
    floor = statistics.median(base)
    rows = []
    for i, cfg in enumerate(cfgs):
        fps = statistics.median(ours[i])
        rows.append(
            {
                "clip": clip.name,
                "model": str(cfg.model),
                "size": [w, h],
                "frames": n,
                "repeats": repeats,
                "batch": batch,
                "preset": preset,
                "backend": used[i],
                "streamcolor_fps": round(fps, 2),
                "transcode_only_fps": round(floor, 2),
                "ratio_to_transcode": round(fps / floor, 3),
                "all_streamcolor_fps": [round(v, 2) for v in ours[i]],
                "all_transcode_fps": [round(v, 2) for v in base],
                "stage_ms_per_frame": {
                    k: round(statistics.median(d[k] for d in stage_ms[i]), 3) for k in stage_ms[i][0]
                },
            }
        )
    return rows


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clip", type=Path, nargs="+", default=[DEFAULT_CLIP], help="one or more colour clips")
    ap.add_argument("--height", type=int, nargs="+", default=[480])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--max-frames", type=int, default=0)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--preset", default="veryfast")
    ap.add_argument("--backend", default="auto", help="auto, onnx, torch, tensorrt")
    ap.add_argument("--precision", default=None, help="fp16/fp32 for the GPU engines")
    ap.add_argument(
        "--model", type=Path, nargs="+", help="ONNX models (with cards) measured side by side (default: shipped)"
    )
    ap.add_argument("--out", type=Path, help="JSON path (default benchmarks/results/video_speed_<date>.json)")
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        rows = [
            row
            for clip in a.clip
            for h in a.height
            for row in run(
                clip, h, a.repeats, a.max_frames, a.batch, a.preset, Path(tmp), a.backend, a.precision, a.model
            )
        ]
    result = {"runs": rows}
    out = save_result("video_speed", result, a.out)
    for r in rows:
        print(
            f"{r['clip']} {r['size'][0]}x{r['size'][1]} {r['frames']} frames, {Path(r['model']).name}: "
            f"streamcolor {r['streamcolor_fps']:.1f} fps, "
            f"transcode-only {r['transcode_only_fps']:.1f} fps, ratio {r['ratio_to_transcode']:.3f}; "
            f"stage ms/frame {r['stage_ms_per_frame']}"
        )
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
