"""What an output will be, settled before any work (sink.VideoSink writes it): container,
codec and encoder options, depth and chroma size, time base; and every refusal (the folder,
an existing file, a codec the container cannot hold, a frame size the encoder refuses)."""

from __future__ import annotations

import functools
import io
import os
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

from streamcolor.errors import ConfigError, NotAvailableError, OutputError
from streamcolor.source import StreamInfo

# codec flag -> (FFmpeg encoder, pixel format, options)
CODECS: dict[str, tuple[str, str, dict[str, str]]] = {
    "h264": ("libx264", "yuv420p", {}),
    "hevc": ("libx265", "yuv420p", {"x265-params": "log-level=error"}),
    "ffv1": ("ffv1", "yuv420p", {"level": "3", "slices": "4", "slicecrc": "1"}),
    "prores": ("prores_ks", "yuv422p10le", {"profile": "3"}),  # ProRes 422 HQ
    # WebM's codecs; libvpx's "good" deadline at cpu-used 5 is its documented speed/quality middle
    "vp9": ("libvpx-vp9", "yuv420p", {"deadline": "good", "cpu-used": "5", "row-mt": "1", "b": "0"}),
    "av1": ("libsvtav1", "yuv420p", {"preset": "10"}),
    "gif": ("gif", "rgb8", {}),  # GIF: 256 fixed colours (3-3-2 bits)
}


CODEC_CHOICES = ("auto", *CODECS)


# output file extension -> (FFmpeg muxer, codec for --codec auto)
CONTAINERS: dict[str, tuple[str, str]] = {
    ".mp4": ("mp4", "h264"),
    ".m4v": ("mp4", "h264"),
    ".mov": ("mov", "h264"),
    ".mkv": ("matroska", "h264"),
    ".webm": ("webm", "vp9"),
    ".avi": ("avi", "h264"),
    ".ts": ("mpegts", "h264"),
    ".flv": ("flv", "h264"),
    ".gif": ("gif", "gif"),
}


# Codecs whose bitstream has no sample aspect ratio field.
_NO_SAR_IN_BITSTREAM = {"vp9", "av1", "gif"}


# Codecs whose bitstream cannot mark a frame interlaced (and WebM keeps no field order).
_NO_FIELDS = {"vp9", "av1", "gif"}


# Containers without a time stamp per frame: one frame per tick of a constant rate.
_CONSTANT_RATE = {"avi": None, "gif": Fraction(1, 100)}  # time base: 1/rate, or GIF's centiseconds


PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")


@dataclass(frozen=True)
class EncodeOptions:
    codec: str = "auto"  # auto: the output container's (h264; vp9 for .webm; gif for .gif)
    crf: int = 18
    preset: str = "veryfast"
    tune: str = ""  # x264/x265 tune; live outputs use 'zerolatency' (no look-ahead, no B-frames)
    gop: int = 0  # frames between key frames; 0 = the encoder's default
    hw_encode: bool = False  # NVENC for h264/hevc where the GPU has one (H100/A100 do not: libx264/265)

    def __post_init__(self) -> None:
        if self.codec not in CODEC_CHOICES:
            raise ConfigError(f"unknown codec '{self.codec}'; choose one of: {', '.join(CODEC_CHOICES)}")
        if self.preset not in PRESETS:
            raise ConfigError(f"unknown preset '{self.preset}'; choose one of: {', '.join(PRESETS)}")
        if not 0 <= self.crf <= 51:
            raise ConfigError(f"crf must be between 0 and 51, got {self.crf}")
        if self.gop < 0:
            raise ConfigError(f"GOP length must be 0 (encoder default) or more, got {self.gop}")


# URL scheme -> FFmpeg muxer for live outputs
LIVE_MUXERS = {"udp": "mpegts", "tcp": "mpegts", "srt": "mpegts", "rtp": "rtp_mpegts", "rtmp": "flv", "rtmps": "flv"}


# HLS as a live output: 1-second segments, a sliding window of 6, old segments deleted
HLS_OPTIONS = {"hls_time": "1", "hls_list_size": "6", "hls_flags": "delete_segments+independent_segments"}


def is_url(target: str | os.PathLike) -> bool:
    return "://" in str(target)


def encoder_options(opts: EncodeOptions, encoder: str) -> dict[str, str]:
    """FFmpeg options for the video encoder: the codec's own (CODECS), quality and speed."""
    if encoder.endswith("_nvenc"):  # NVENC: constant quality at the CRF's value, low-latency tuning live
        options = {"preset": "p4", "rc": "vbr", "cq": str(opts.crf), "b": "0"}
        if opts.tune == "zerolatency":
            options["tune"] = "ll"
        return options
    codec = next((c for c, spec in CODECS.items() if spec[0] == encoder), opts.codec)
    options = dict(CODECS[codec][2]) if codec in CODECS else {}
    if codec in ("h264", "hevc"):
        options.update(crf=str(opts.crf), preset=opts.preset)
        if opts.tune:
            options["tune"] = opts.tune
    elif codec in ("vp9", "av1"):  # their CRF scale is 0-63: the same quality step as x264's 0-51
        options["crf"] = str(round(opts.crf * 63 / 51))
    return options


@functools.cache
def nvenc_works(name: str, width: int, height: int) -> bool:
    """Whether FFmpeg's NVENC encoder `name` opens here (a driver and an NVENC unit)."""
    from streamcolor.probe import nvidia_driver_present

    if name not in av.codecs_available or not nvidia_driver_present():
        return False
    try:
        ctx = av.CodecContext.create(name, "w")
        ctx.width, ctx.height, ctx.pix_fmt = width, height, "yuv420p"
        ctx.time_base = Fraction(1, 25)
        ctx.open()
    except (av.FFmpegError, ValueError):
        return False
    return True


def partial_path(out: Path) -> Path:
    return out.with_name(f"{out.stem}.partial{out.suffix}")


def check_output_path(out: Path, inputs: list[Path], overwrite: bool = False) -> None:
    """Refuse, before any work starts, an output that cannot be written, that would replace
    an input, or that exists when overwrite was not asked for (never a silent overwrite)."""
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.exists():
        raise OutputError(f"output folder does not exist: {parent}")
    if not parent.is_dir():
        raise OutputError(f"output folder is not a folder: {parent}")
    if out.is_dir():
        raise OutputError(f"output is a folder, expected a file: {out}")
    for inp in inputs:
        if out.resolve() == inp.resolve() or (out.exists() and inp.exists() and out.samefile(inp)):
            raise OutputError(f"output is the same file as the input: {out}")
    if (out.exists() or out.is_symlink()) and not overwrite:
        raise OutputError(f"output exists: {out} (give --overwrite or -y to replace it)")
    check_writable(parent)


def check_writable(folder: Path) -> None:
    """Create and delete a file in folder: the only check that a read-only disk, a folder
    without permission or ACLs and root's rights all answer truthfully (os.access does not)."""
    try:
        fd, name = tempfile.mkstemp(prefix=".streamcolor-", dir=folder)
    except OSError as e:
        raise OutputError(f"cannot write in {folder}: {e.strerror or e}") from None
    os.close(fd)
    os.unlink(name)


def _format_for(out: Path | str) -> str:
    if is_url(out):
        scheme = str(out).split("://", 1)[0].lower()
        if scheme not in LIVE_MUXERS:
            raise OutputError(f"cannot send to {scheme}:// outputs; use one of: {', '.join(LIVE_MUXERS)}, or a file")
        return LIVE_MUXERS[scheme]
    if out.suffix.lower() == ".m3u8":
        return "hls"
    if out.suffix.lower() not in CONTAINERS:
        raise OutputError(f"unknown output container for '{out.name}': use {', '.join(CONTAINERS)}")
    return CONTAINERS[out.suffix.lower()][0]


def _probe_container(fmt: str) -> av.container.OutputContainer:
    """An in-memory output container of this format, to ask what it can hold."""
    return av.open(io.BytesIO(), "w", format=fmt)


# Video codecs MPEG-TS has no stream type for (FFmpeg would write them as private data).
_TS_REFUSES = {"ffv1", "prores", "prores_ks", "gif", "vp9", "libvpx-vp9"}


def _holds(container: av.container.OutputContainer, codec_name: str) -> bool:
    if container.format.name in ("mpegts", "rtp_mpegts"):
        # its tag table lists only MPEG-2 codecs, but it carries H.264, HEVC, AV1, AAC, Opus...
        return codec_name not in _TS_REFUSES
    supported = container.supported_codecs
    return not supported or codec_name in supported  # no tag table (e.g. mpegts): anything goes


@dataclass(frozen=True)
class VideoPlan:
    """How the video is written, settled before any work: muxer, codec, encoder, pixel
    format and the stream's time base (None: the input's)."""

    format: str
    codec: str
    encoder: str
    pix_fmt: str
    time_base: Fraction | None
    depth: int = 8  # above 8: a deep output (pix_fmt is planar YUV at this depth, luma from GrayFrame.y_deep)
    note: str | None = None  # what the output cannot keep of the input's depth, for a warning

    def chroma_shape(self, width: int, height: int) -> tuple[int, int] | None:
        """(Hc, Wc) of a deep output's chroma planes (None: the 8-bit path's 4:2:0 half size)."""
        if self.depth <= 8:
            return None
        c = av.VideoFormat(self.pix_fmt, width, height).components[1]
        return c.height, c.width


# Deep outputs by codec: the planar YUV family and the depths it takes (each checked
# against the encoder PyAV has, so an 8-bit-only x264 build falls back to 8 bits).
_DEEP_FORMATS: dict[str, tuple[str, tuple[int, ...]]] = {
    "ffv1": ("yuv420p{}le", (9, 10, 12, 14, 16)),
    "prores": ("yuv422p{}le", (10,)),
    "hevc": ("yuv420p{}le", (10, 12)),
    "h264": ("yuv420p{}le", (10,)),
    "av1": ("yuv420p{}le", (10,)),
}


def deep_format(codec: str, encoder: str, depth: int, odd: bool, full_chroma: bool = False) -> tuple[str, int] | None:
    """(pixel format, bits) a deep input is written at with this codec: its own depth where
    the encoder takes it, else the most below it (16-bit into 10-bit ProRes), else the least
    above; 4:4:4 for x264/x265 at odd sizes, and ProRes 4444 for an input with full-resolution
    colour (full_chroma: 4:4:4 or RGB). None: the codec holds 8 bits only here."""
    family, depths = _DEEP_FORMATS.get(codec, ("", ()))
    if (odd and codec in ("h264", "hevc")) or (full_chroma and codec == "prores"):
        family = "yuv444p{}le"
    if encoder not in av.codecs_available:
        return None
    takes = {f.name for f in av.codec.Codec(encoder, "w").video_formats or ()}
    usable = [d for d in depths if family.format(d) in takes]
    if not usable:
        return None
    below = [d for d in usable if d <= depth]
    bits = max(below) if below else min(usable)
    return family.format(bits), bits


def _rate(info: StreamInfo) -> Fraction:
    """The input's frame rate as a fraction with a small denominator (30000/1001, 25...)."""
    rate = Fraction(info.average_rate or 25).limit_denominator(1001)
    return rate if rate > 0 else Fraction(25)


def plan_video(out: Path | str, info: StreamInfo, opts: EncodeOptions, live: bool) -> VideoPlan:
    """Check everything about the video output that can fail, before the first warning and
    before any work: the container (by extension or URL), a codec it holds (--codec auto:
    the container's own), and that the encoder opens at this frame size."""
    fmt = _format_for(out)
    codec = opts.codec
    if codec == "auto":
        codec = "h264" if live else CONTAINERS[Path(out).suffix.lower()][1]
        if codec == "vp9" and CODECS["vp9"][0] not in av.codecs_available:
            codec = "av1"  # a PyAV without libvpx: WebM's other video codec
    encoder, pix_fmt, _ = CODECS[codec]
    if encoder not in av.codecs_available:
        raise NotAvailableError(f"this PyAV's FFmpeg has no {encoder} encoder for --codec {codec}")
    holds = ["h264"]  # live outputs (MPEG-TS, FLV, HLS) are H.264, which they all hold
    if not live:
        with _probe_container(fmt) as probe:
            holds = [c for c, spec in CODECS.items() if _holds(probe, spec[0]) or _holds(probe, c)]
        if codec not in holds:
            where = Path(str(out)).suffix or fmt
            raise ConfigError(f"codec {codec} cannot go into {where} outputs; it holds: {', '.join(holds) or 'none'}")
    if encoder == "libsvtav1":
        # SVT-AV1 prints a banner and its errors to stderr itself, not through FFmpeg's log:
        # fatal messages only, so that a run stays one summary line (a refusal, one line)
        os.environ.setdefault("SVT_LOG", "0")
    if (info.width % 2 or info.height % 2) and codec in ("h264", "hevc"):
        pix_fmt = "yuv444p"  # x264/x265 refuse 4:2:0 at an odd size; 4:4:4 keeps the exact size and luma
    depth, note = 8, None
    if info.deep and not live:
        odd = bool(info.width % 2 or info.height % 2)
        full_chroma = info.pix_fmt.startswith(("yuv444", "gbr", "rgb", "bgr"))
        deep = deep_format(codec, encoder, info.bit_depth, odd, full_chroma)
        if deep is None:
            note = (
                f"{codec} output holds 8 bits here: the {info.bit_depth}-bit input is written at 8 bits "
                "(.mkv with --codec ffv1 keeps its depth)"
            )
        else:
            pix_fmt, depth = deep
            if depth < info.bit_depth:
                note = (
                    f"{codec} holds {depth} of the input's {info.bit_depth} bits: luma rounded to {depth} bits "
                    "(.mkv with --codec ffv1 keeps them all)"
                )
    time_base = None
    if fmt in _CONSTANT_RATE:
        time_base = _CONSTANT_RATE[fmt] or 1 / _rate(info)
    try:  # x265 refuses frames under 8x8 (and more), FFV1 with 4 slices tiny ones: say so now
        ctx = av.CodecContext.create(encoder, "w")
        ctx.width, ctx.height, ctx.pix_fmt = info.width, info.height, pix_fmt
        ctx.time_base = time_base or info.time_base
        ctx.framerate = _rate(info)
        ctx.options = encoder_options(opts, encoder)
        ctx.open()
    except (av.FFmpegError, ValueError) as e:
        reason = getattr(e, "strerror", None) or e
        other = next((c for c in ("h264", "vp9", "ffv1") if c in holds and c != codec), None)
        hint = f"; try --codec {other}" if other else ""
        raise OutputError(f"{encoder} cannot encode {info.width}x{info.height} frames ({reason}){hint}") from None
    return VideoPlan(fmt, codec, encoder, pix_fmt, time_base, depth, note)
