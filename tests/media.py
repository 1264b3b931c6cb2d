"""Tiny media the tests make themselves with PyAV (no files from outside the repository)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def scene(h: int, w: int, t: int) -> np.ndarray:
    """(h, w, 3) uint8 RGB: blue sky, green ground, a moving red box (something to colour)."""
    img = np.zeros((h, w, 3), np.uint8)
    sky = h // 2
    img[:sky] = np.linspace([90, 140, 230], [170, 200, 250], sky, dtype=np.float32)[:, None, :].astype(np.uint8)
    rng = np.random.default_rng(t)
    ground = np.array([60, 140, 50], np.float32) + rng.normal(0, 12, (h - sky, w, 1))
    img[sky:] = np.clip(ground, 0, 255).astype(np.uint8)
    x = (t * 3) % max(1, w - w // 4)
    img[h // 3 : h // 3 + h // 4, x : x + w // 4] = (200, 40, 40)
    return img


def make_video(
    path: Path,
    width: int = 96,
    height: int = 64,
    frames: int = 12,
    rate: int = 25,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    audio: bool = True,
    vfr: bool = False,
    rotation: int = 0,
    colorspace: int | None = None,
    color_range: int | None = None,
    start: float = 0.0,
    options: dict[str, str] | None = None,
    fmt: str | None = None,
    container_options: dict[str, str] | None = None,
    sar: Fraction | None = None,
    audio_delay: float = 0.0,
    audio_rate: int = 48000,
) -> Path:
    """Write a small video; with vfr the frame gaps alternate 1, 2, 3 ticks of 1/rate.
    start: seconds on the clock of the first frame and audio sample (every stream).
    options: the video encoder's (e.g. {"bf": "2"} for B-frames). fmt: the muxer, when
    the file name does not say it."""
    with av.open(str(path), "w", format=fmt, options=container_options or {}) as c:
        v = c.add_stream(codec, rate=rate, options=options or {})
        v.width, v.height, v.pix_fmt = width, height, pix_fmt
        tb = Fraction(1, rate * 10)  # the muxer may change v.time_base once it starts
        v.time_base = tb
        v.codec_context.time_base = tb
        if colorspace is not None:
            v.codec_context.colorspace = colorspace
        if color_range is not None:
            v.codec_context.color_range = color_range
        if rotation:
            v.set_display_rotation(rotation)
        if sar:
            v.codec_context.sample_aspect_ratio = sar
        a = None
        if audio:
            a = c.add_stream("aac", rate=audio_rate)
            a.layout = "stereo"
        pts = round(start * rate * 10)
        first = pts
        for i in range(frames):
            f = av.VideoFrame.from_ndarray(scene(height, width, i), format="rgb24")
            if colorspace is not None:
                f.colorspace = colorspace
            if color_range is not None:
                f.color_range = color_range
            f.pts = pts
            f.time_base = tb
            for p in v.encode(f):
                c.mux(p)
            pts += 10 * (1 + i % 3 if vfr else 1)
        for p in v.encode():
            c.mux(p)
        if a is not None:
            seconds = (pts - first) / (rate * 10)
            n = int(audio_rate * seconds)
            t = np.arange(n) / float(audio_rate)
            tone = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
            samples = np.stack([tone, tone])
            for start_sample in range(0, n, 1024):
                chunk = np.ascontiguousarray(samples[:, start_sample : start_sample + 1024])
                af = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
                af.sample_rate = audio_rate
                af.pts = start_sample + round((start + audio_delay) * audio_rate)
                for p in a.encode(af):
                    c.mux(p)
            for p in a.encode():
                c.mux(p)
    return path


def make_shots_video(
    path: Path,
    shots: tuple[int, ...] = (50, 50, 50),
    width: int = 96,
    height: int = 64,
    options: dict[str, str] | None = None,
) -> Path:
    """H.264 + AAC with hard scene cuts: every other shot is the negative of the scene; a title
    and an audio language to keep. options: the video encoder's ({"qp": "0"}: lossless, the same
    pictures every time)."""
    with av.open(str(path), "w") as c:
        c.metadata["title"] = "reel 7"
        v = c.add_stream("libx264", rate=25, options=options or {})
        v.width, v.height, v.pix_fmt = width, height, "yuv420p"
        tb = Fraction(1, 250)
        v.time_base = tb
        v.codec_context.time_base = tb
        a = c.add_stream("aac", rate=48000)
        a.layout = "stereo"
        a.metadata["language"] = "fra"
        pts = i = 0
        for k, n in enumerate(shots):
            for _ in range(n):
                img = scene(height, width, i)
                f = av.VideoFrame.from_ndarray(255 - img if k % 2 else img, format="rgb24")
                f.pts, f.time_base = pts, tb
                for p in v.encode(f):
                    c.mux(p)
                pts += 10
                i += 1
        for p in v.encode():
            c.mux(p)
        samples = int(48000 * pts / 250)
        t = np.arange(samples) / 48000.0
        tone = (0.2 * np.sin(2 * np.pi * 330 * t)).astype(np.float32)
        for start in range(0, samples, 1024):
            chunk = np.ascontiguousarray(np.stack([tone, tone])[:, start : start + 1024])
            af = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
            af.sample_rate, af.pts = 48000, start
            for p in a.encode(af):
                c.mux(p)
        for p in a.encode():
            c.mux(p)
    return path


def make_audio_only(path: Path) -> Path:
    with av.open(str(path), "w") as c:
        a = c.add_stream("aac", rate=48000)
        a.layout = "mono"
        for start in range(0, 48000, 1024):
            af = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            af.sample_rate = 48000
            af.pts = start
            for p in a.encode(af):
                c.mux(p)
        for p in a.encode():
            c.mux(p)
    return path


def read_video(path: Path) -> dict:
    """What a user would check: size, frame times, luma planes, audio packet bytes, tags."""
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        out = {
            "width": v.codec_context.width,
            "height": v.codec_context.height,
            "codec": v.codec_context.name,
            "color_range": int(v.codec_context.color_range or 0),
            "colorspace": int(v.codec_context.colorspace or 2),
            "times": [],
            "luma": [],
            "rgb": [],
            "rotation": None,
            "pix_fmt": v.codec_context.format.name if v.codec_context.format else None,
        }
        for f in c.decode(video=0):
            out["times"].append(round(float(f.time), 6))
            yuv = f if f.format.name in ("yuv420p", "yuvj420p") else f.reformat(format="yuv420p")
            p = yuv.planes[0]
            out["luma"].append(np.frombuffer(p, np.uint8).reshape(p.height, p.line_size)[:, : p.width].copy())
            out["rgb"].append(f.to_ndarray(format="rgb24"))
            out["rotation"] = int(f.rotation or 0)
    with av.open(str(path)) as c:
        audio = [s for s in c.streams if s.type == "audio"]
        out["audio_codec"] = audio[0].codec_context.name if audio else None
        out["audio_packets"] = [bytes(p) for p in c.demux(*audio) if p.size] if audio else []
    return out


def make_streams(path: Path, videos: list[dict], audio: bool = False) -> Path:
    """Several video streams in one file, in the order given. Each dict: width, height,
    frames, and optionally codec ('libx264'; 'mjpeg' for a picture) and disposition (a
    name of av.stream.Disposition: 'attached_pic', 'default'...)."""
    with av.open(str(path), "w") as c:
        streams = []
        for spec in videos:
            codec = spec.get("codec", "libx264")
            s = c.add_stream(codec, rate=spec.get("rate", 25))
            s.width, s.height = spec["width"], spec["height"]
            s.pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
            if "disposition" in spec:
                s.disposition = av.stream.Disposition[spec["disposition"]]
            streams.append(s)
        a = None
        if audio:
            a = c.add_stream("aac", rate=48000)
            a.layout = "mono"
        for s, spec in zip(streams, videos):
            for i in range(spec["frames"]):
                f = av.VideoFrame.from_ndarray(scene(spec["height"], spec["width"], i), format="rgb24")
                f = f.reformat(format=s.pix_fmt)
                f.pts = i
                for p in s.encode(f):
                    c.mux(p)
            for p in s.encode():
                c.mux(p)
        if a is not None:
            for start in range(0, 48000, 1024):
                af = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
                af.sample_rate = 48000
                af.pts = start
                for p in a.encode(af):
                    c.mux(p)
            for p in a.encode():
                c.mux(p)
    return path
