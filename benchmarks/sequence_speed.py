"""A 2K film scan as a 16-bit TIFF sequence into 16-bit FFV1: `streamcolor video` end to end
beside a transcode-only pass of the same frames, in one run (issue 23's target: >= 0.5x).

    python -m benchmarks.sequence_speed                      # 2048x1556, 24 frames, best of 3
    python -m benchmarks.sequence_speed --frames 48 --repeats 5

The frames are written here (RGB 16-bit TIFF, a full-aperture 2K scan's size: a textured gray
picture with a smooth ramp and motion, R = G = B as a black-and-white scan gives). Both passes
read them with the same sequence source (one TIFF decoder, the frames' luma at 16 bits) and
write FFV1 yuv420p16le in Matroska with the same settings; the transcode-only pass writes
neutral chroma instead of running the model (streamcolor.bench.transcode_only). Passes
alternate; the best of each is reported with the per-stage split. Results go to
benchmarks/results/sequence_speed_<date>.json with the machine and versions.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from benchmarks.common import save_result
from streamcolor.api import ColorizeConfig, colorize_video, make_colorizer
from streamcolor.bench import transcode_only
from streamcolor.output_plan import EncodeOptions


def write_scan(folder: Path, width: int, height: int, frames: int) -> str:
    """frames RGB48 TIFFs, folder/scan_%06d.tif from 86400 (a reel's first frame number);
    -> the pattern."""
    rng = np.random.default_rng(0)
    grain = rng.integers(0, 2048, (height, width + 4 * frames), dtype=np.uint16)
    ramp = np.linspace(4000, 60000, width, dtype=np.float32)[None, :]
    shade = np.linspace(0.6, 1.0, height, dtype=np.float32)[:, None]
    enc = av.CodecContext.create("tiff", "w")
    enc.width, enc.height, enc.pix_fmt = width, height, "rgb48le"
    enc.time_base = Fraction(1, 24)
    enc.open()
    for i in range(frames):
        y = (ramp * shade).astype(np.uint16) + grain[:, 4 * i : 4 * i + width]
        box = slice(height // 3, height // 3 + height // 5), slice(40 * i % width, 40 * i % width + width // 6)
        y[box] //= 3
        frame = av.VideoFrame.from_ndarray(np.repeat(y[..., None], 3, axis=2), format="rgb48le")
        (folder / f"scan_{86400 + i:06d}.tif").write_bytes(b"".join(bytes(p) for p in enc.encode(frame)))
    return str(folder / "scan_%06d.tif")


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--width", type=int, default=2048)
    ap.add_argument("--height", type=int, default=1556)
    ap.add_argument("--frames", type=int, default=24)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="inference threads (0: all cores)")
    ap.add_argument("--out", type=Path, default=None, help="result JSON (default: benchmarks/results/...)")
    a = ap.parse_args(argv)
    cfg = ColorizeConfig(threads=a.threads or None, encode=EncodeOptions(codec="ffv1"))
    colorizer = make_colorizer(cfg)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "scan").mkdir()
        t = time.perf_counter()
        pattern = write_scan(tmp / "scan", a.width, a.height, a.frames)
        write_s = time.perf_counter() - t
        size_mb = sum(p.stat().st_size for p in (tmp / "scan").iterdir()) / 1e6
        colour, plain = [], []
        for r in range(a.repeats):
            out = tmp / "plain.mkv"
            frames, seconds, times = transcode_only(pattern, out, cfg.encode)
            with av.open(str(out)) as c:
                pix_fmt = c.streams.video[0].codec_context.format.name
            plain.append((seconds, frames, times.per_frame_ms(frames), pix_fmt))
            out.unlink()
            out = tmp / "colour.mkv"
            s = colorize_video(pattern, out, cfg, colorizer=colorizer, warn=lambda m: None)
            with av.open(str(out)) as c:
                pix_fmt = c.streams.video[0].codec_context.format.name
            colour.append((s.seconds, s.frames, s.times.per_frame_ms(s.frames), pix_fmt))
            out.unlink()
            print(f"repeat {r + 1}: transcode-only {plain[-1][0]:.2f} s, streamcolor {colour[-1][0]:.2f} s")
    best_plain, best_colour = min(plain), min(colour)
    result = {
        "input": {
            "frames": a.frames,
            "size": [a.width, a.height],
            "format": "TIFF rgb48le sequence",
            "megabytes": round(size_mb, 1),
            "written_in_s": round(write_s, 1),
        },
        "output": f"FFV1 {best_colour[3]} in Matroska (transcode-only: {best_plain[3]})",
        "repeats": a.repeats,
        "transcode_only_fps": round(best_plain[1] / best_plain[0], 2),
        "streamcolor_fps": round(best_colour[1] / best_colour[0], 2),
        "ratio_to_transcode": round((best_colour[1] / best_colour[0]) / (best_plain[1] / best_plain[0]), 3),
        "transcode_only_stage_ms_per_frame": best_plain[2],
        "streamcolor_stage_ms_per_frame": best_colour[2],
        "all_seconds": {
            "transcode_only": [round(p[0], 3) for p in plain],
            "streamcolor": [round(c[0], 3) for c in colour],
        },
    }
    path = save_result("sequence_speed", result, a.out)
    print(
        f"{a.width}x{a.height} 16-bit TIFF -> {result['output']}: transcode-only {result['transcode_only_fps']} fps, "
        f"streamcolor {result['streamcolor_fps']} fps, ratio {result['ratio_to_transcode']} ({path})"
    )
    return result


if __name__ == "__main__":
    main()
