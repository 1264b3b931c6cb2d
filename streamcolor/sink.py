"""Video sinks: encode colorized frames and mux them with the input's other streams.

The output is written to a partial file beside OUT (`NAME.partial.EXT`) and renamed
to OUT only after the encoders are flushed and the trailer is written; on any failure
or Ctrl-C the partial file is deleted, so a file at OUT is always a finished one.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from streamcolor.errors import ConfigError, NotAvailableError, OutputError
from streamcolor.source import DecodedAudio, GrayFrame, StreamInfo, no_protocol_line, stream_start, user_tags

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
# Audio encoders by the codec a container asks for, where FFmpeg's default for that codec
# is not the one to use (its native Opus encoder is experimental).
_AUDIO_ENCODERS = {"opus": "libopus", "mp3": "libmp3lame"}
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
    from streamcolor.source import nvidia_driver_present

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


def rescale_luma(y: np.ndarray, bits_in: int, bits_out: int, full_range: bool) -> np.ndarray:
    """(H, W) uint16 luma codes at bits_in -> the same luma at bits_out. Untouched when the
    depths agree; limited range moves by whole bits (BT.2100's scaling: 64 at 10 bits is 16 at
    8), full range scales 0..2^n-1 onto 0..2^m-1."""
    if bits_in == bits_out:
        return y
    if full_range:
        scaled = np.rint(y.astype(np.float32) * (((1 << bits_out) - 1) / ((1 << bits_in) - 1)))
        return scaled.astype(np.uint16)
    if bits_out > bits_in:
        return (y << (bits_out - bits_in)).astype(np.uint16)
    shift = bits_in - bits_out
    return np.minimum((y.astype(np.uint32) + (1 << (shift - 1))) >> shift, (1 << bits_out) - 1).astype(np.uint16)


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


class VideoSink:
    """Writes OUT through a partial file. A context manager: leaving it with an
    exception (KeyboardInterrupt included) deletes the partial file.

    OUT may also be a live output: a URL (udp://, srt://, rtmp://...) or an HLS playlist
    (.m3u8); those are written in place, there is nothing to rename."""

    def __init__(self, out: Path | str, info: StreamInfo, opts: EncodeOptions, warn: Callable[[str], None] = print):
        self.live = is_url(out) or str(out).lower().endswith(".m3u8")
        self.out = str(out) if is_url(out) else Path(out)
        self.tmp = None if self.live else partial_path(self.out)
        self.info = info
        self.opts = opts
        self.warn = warn
        self.plan = plan_video(self.out, info, opts, self.live)  # every refusal before any work
        if self.plan.note:
            warn(self.plan.note)
        self.format = self.plan.format
        self.container: av.container.OutputContainer | None = None
        self.video: av.VideoStream | None = None
        self.copied: dict[int, av.stream.Stream] = {}  # input stream index -> output stream
        self.reencoded: dict[int, av.AudioStream] = {}
        self.resamplers: dict[int, av.AudioResampler] = {}
        self.frames = 0
        self._last_pts: int | None = None
        self._pending: list = []  # packets that arrive before the first video frame
        self._fields: av.filter.Graph | None = None  # marks frames interlaced (see _mark_fields)

    def __enter__(self) -> VideoSink:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.finish()
        else:
            self.abort()

    def plan_streams(self) -> frozenset[int]:
        """Decide copy / re-encode / drop for each carried input stream; return the
        indexes of audio streams the source must decode (re-encode)."""
        self._plan: dict[int, str] = {}
        self._audio_codec = None
        if self.live:  # live outputs carry the video only
            for s in self.info.other_streams:
                self._plan[s.index] = "drop"
            return frozenset()
        with _probe_container(self.format) as probe:
            default_audio = probe.default_audio_codec
            audio_encoder = _AUDIO_ENCODERS.get(default_audio, default_audio)
            if audio_encoder not in av.codecs_available:
                audio_encoder = None  # GIF holds no audio ("none")
            for s in self.info.other_streams:
                name = s.codec_context.name if s.codec_context else None
                offset = stream_start(s) - self.info.start_s
                if self.format == "avi" and s.type == "audio" and abs(offset) > 1 / _rate(self.info):
                    # AVI has no start time per stream: its audio always starts with the video
                    self.warn(
                        f"audio stream #{s.index} starts {offset:+.2f} s from the video; AVI cannot hold that "
                        f"offset, so it plays {abs(offset):.2f} s {'early' if offset > 0 else 'late'} (use .mkv)"
                    )
                if name and _holds(probe, name) and self.format != "gif":
                    self._plan[s.index] = "copy"
                elif s.type == "audio" and audio_encoder is not None:
                    self._plan[s.index] = "reencode"
                    self.warn(
                        f"audio stream #{s.index} ({name}) cannot go into {self.out.suffix}: "
                        f"re-encoding it to {default_audio}"
                    )
                else:
                    self._plan[s.index] = "drop"
                    self.warn(f"{s.type} stream #{s.index} ({name}) cannot go into {self.out.suffix}: not copied")
            self._audio_codec = audio_encoder
        return frozenset(i for i, how in self._plan.items() if how == "reencode")

    def _open(self, first: GrayFrame) -> None:
        info, opts, plan = self.info, self.opts, self.plan
        encoder, pix_fmt = plan.encoder, plan.pix_fmt
        target = str(self.out) if self.live else str(self.tmp)
        try:
            container_options = HLS_OPTIONS if self.format == "hls" else {}
            self.container = av.open(target, "w", format=self.format, options=container_options)
        except av.FFmpegError as e:
            if isinstance(e, av.error.ProtocolNotFoundError):
                scheme = str(self.out).split("://", 1)[0]
                raise OutputError(no_protocol_line(scheme)) from None
            raise OutputError(f"cannot open {self.out}: {e.strerror or e}") from None
        odd = info.width % 2 or info.height % 2
        if odd and pix_fmt.startswith("yuv444p") and CODECS[plan.codec][1] != "yuv444p":
            self.warn(f"odd frame size {info.width}x{info.height}: encoding {plan.codec} 4:4:4 to keep it exact")
        if not hasattr(self, "_plan"):
            self.plan_streams()
        nvenc = f"{plan.codec}_nvenc"
        use_nvenc = opts.hw_encode and plan.codec in ("h264", "hevc") and not odd
        if use_nvenc and nvenc_works(nvenc, info.width, info.height):
            encoder = nvenc
        v = self.container.add_stream(encoder, rate=_rate(info))
        v.width, v.height, v.pix_fmt = info.width, info.height, pix_fmt
        time_base = plan.time_base or info.time_base
        v.time_base = time_base
        cc = v.codec_context
        cc.time_base = time_base
        if plan.time_base is not None:
            # no time stamps in the container: frames must leave the encoder in display
            # order (AVI would decode B-frames' times out of order)
            cc.max_b_frames = 0
        cc.color_range = info.color_range if info.color_range else (2 if info.full_range else 1)
        cc.colorspace = info.colorspace
        cc.color_primaries = info.color_primaries
        cc.color_trc = info.color_trc
        options = encoder_options(opts, encoder)
        if encoder == "prores_ks" and pix_fmt.startswith("yuv444"):
            options["profile"] = "4"  # ProRes 4444 (prores_ks profiles: 3 is 422 HQ)
        if plan.depth > 8 and opts.crf == 0 and encoder in ("libx264", "libx265"):
            # --crf 0 is lossless only at 8 bits: above, x264's and x265's quantiser scale
            # shifts and crf 0 still quantises (x264 --fullhelp: lossless is qp 0)
            del options["crf"]
            if encoder == "libx264":
                options["qp"] = "0"
            else:
                options["x265-params"] += ":lossless=1"
        if info.interlaced:
            # field order kept: in the container (MP4/MOV fiel, Matroska FieldOrder) from the
            # codec context, and coded as fields where the encoder can (x264's --tff/--bff)
            cc.field_order = info.field_order
            cc.flags |= av.codec.context.Flags.interlaced_dct | av.codec.context.Flags.interlaced_me
            bottom_first = info.field_order in (3, 5)  # BB, BT
            if encoder == "libx264":
                options["x264-params"] = "bff=1" if bottom_first else "tff=1"
            elif encoder == "libx265":
                # x265's interlace mode takes each picture as one field (measured: decoded frames
                # alternate top/bottom), so HEVC keeps the order in the container only
                self.warn(
                    "hevc (x265) frames cannot be marked interlaced: the field order is kept in the "
                    "container only (--codec ffv1, prores or h264 mark every frame)"
                )
            elif plan.codec in _NO_FIELDS:
                self.warn(
                    f"{plan.codec} has no way to mark interlaced frames: the output will play as progressive "
                    "(.mkv with --codec ffv1 or h264 keeps the field order)"
                )
        if opts.gop:
            cc.gop_size = opts.gop
        v.options = options
        if first.rotation:
            v.set_display_rotation(first.rotation)
        if info.sample_aspect_ratio:  # into the encoder's headers (H.264/HEVC VUI) and MP4/MOV/AVI
            cc.sample_aspect_ratio = info.sample_aspect_ratio
            if info.sample_aspect_ratio != 1 and plan.codec in _NO_SAR_IN_BITSTREAM:
                # Matroska/WebM take it from the AVStream, which PyAV cannot set, and these
                # codecs have no place for it in their own headers
                self.warn(
                    f"the pixel aspect ratio {info.sample_aspect_ratio} cannot be kept in {plan.codec} "
                    "output: it will play with square pixels"
                )
        self.video = v
        if not self.live:
            # title, language, timecode (MOV/MP4 write a tmcd track for it), ...
            self.container.metadata.update(info.metadata)
            v.metadata.update(info.video_metadata)
        for s in info.other_streams:
            how = self._plan.get(s.index, "drop")
            if how == "copy":
                self.copied[s.index] = self.container.add_stream_from_template(s)
            elif how == "reencode":
                self._add_audio(s)
            out_stream = self.copied.get(s.index) or self.reencoded.get(s.index)
            if out_stream is not None:
                out_stream.metadata.update(user_tags(s.metadata))  # language: eng stays eng
                out_stream.disposition = s.disposition
        try:
            self.container.start_encoding()
        except av.FFmpegError as e:
            raise OutputError(f"cannot write {self.out}: {e.strerror or e}") from None
        for item in self._pending:
            self._mux_other(item)
        self._pending.clear()

    def _add_audio(self, s: av.AudioStream) -> None:
        """An output stream re-encoding input stream s, with a resampler to a rate and sample
        format the encoder takes (Opus: 48 kHz and the like, never 44.1 kHz)."""
        a = self.container.add_stream(self._audio_codec)
        codec = a.codec_context.codec
        rate = s.codec_context.sample_rate
        rates = codec.audio_rates
        if rates and rate not in rates:
            rate = 48000 if 48000 in rates else max(rates)
        a.codec_context.sample_rate = rate
        a.codec_context.layout = s.codec_context.layout
        fmt = codec.audio_formats[0].name if codec.audio_formats else s.codec_context.format.name
        a.codec_context.format = fmt
        a.time_base = Fraction(1, rate)
        self.reencoded[s.index] = a
        self.resamplers[s.index] = av.AudioResampler(format=fmt, layout=s.codec_context.layout, rate=rate)

    @contextlib.contextmanager
    def _writing(self):
        """A full disk (ENOSPC), a file size limit (EFBIG), a disk gone read-only (EROFS)...
        while writing: one OutputError naming the file; leaving the sink deletes the partial file."""
        try:
            yield
        except OSError as e:  # PyAV's errors for these errno values are OSErrors too
            raise OutputError(f"cannot write {self.out}: {e.strerror or e}") from None

    def write(self, item: object) -> None:
        """A colorized GrayFrame, an av.Packet to copy, or DecodedAudio to re-encode."""
        with self._writing():
            if isinstance(item, GrayFrame):
                if self.container is None:
                    self._open(item)
                self._encode_video(item)
            elif self.container is None:
                self._pending.append(item)
            else:
                self._mux_other(item)

    def _encode_video(self, f: GrayFrame) -> None:
        frame = self._frame(f)
        if self.info.interlaced:
            frame = self._mark_fields(frame)
        frame.pts = self._output_pts(f.pts)
        frame.time_base = self.video.codec_context.time_base
        frame.color_range = self.video.codec_context.color_range
        frame.colorspace = self.info.colorspace
        for packet in self.video.encode(frame):
            self.container.mux(packet)
        self.frames += 1

    def _frame(self, f: GrayFrame) -> av.VideoFrame:
        """The colorized frame as planar YUV: 8-bit 4:2:0 (the encoder converts it where its
        format differs), or a deep output's own format with the input's luma at its depth."""
        depth = self.plan.depth
        if depth > 8:
            frame = av.VideoFrame(self.info.width, self.info.height, self.plan.pix_fmt)
            if f.y_deep is not None:
                luma = rescale_luma(f.y_deep, self.info.luma_depth, depth, self.info.full_range)
            else:
                luma = rescale_luma(f.y8.astype(np.uint16), 8, depth, self.info.full_range)
            dtype = np.uint16
        else:
            frame = av.VideoFrame(self.info.width, self.info.height, "yuv420p")
            luma, dtype = f.y8, np.uint8
        size = np.dtype(dtype).itemsize
        for plane, data in zip(frame.planes, (luma, *f.chroma)):
            buf = np.frombuffer(plane, dtype).reshape(plane.height, plane.line_size // size)
            buf[:, : plane.width] = data
        return frame

    def _mark_fields(self, frame: av.VideoFrame) -> av.VideoFrame:
        """frame flagged interlaced with the input's field order, through FFmpeg's setfield
        filter (PyAV cannot set a frame's flags). Encoders that code the field order in their
        own bitstream read it there: FFV1's picture structure (issue 23: FFV1 came out
        progressive), ProRes's interlace mode; x264 takes it from its options as well."""
        if self._fields is None:
            graph = av.filter.Graph()
            src = graph.add_buffer(
                width=frame.width, height=frame.height, format=frame.format.name, time_base=self.info.time_base
            )
            mode = graph.add("setfield", "bff" if self.info.field_order in (3, 5) else "tff")
            src.link_to(mode)
            mode.link_to(graph.add("buffersink"))
            graph.configure()
            self._fields = graph
        self._fields.push(frame)
        return self._fields.pull()

    def _output_pts(self, pts: int) -> int:
        """pts (input time base) in the output stream's: the same number unless the container
        has a constant rate (AVI, GIF), where it is rounded to the frame ticks, each frame
        at least one tick after the one before."""
        if self.plan.time_base is None:
            return pts
        t = round(pts * self.info.time_base / self.plan.time_base)
        if self._last_pts is not None and t <= self._last_pts:
            t = self._last_pts + 1
        self._last_pts = t
        return t

    def _mux_other(self, item: object) -> None:
        if isinstance(item, DecodedAudio):
            stream = self.reencoded[item.stream_index]
            # the decoded times (moved by the input's start) go through the resampler, which
            # keeps them, into the encoder: audio that starts after the video still does
            for frame in self.resamplers[item.stream_index].resample(item.frame):
                for p in stream.encode(frame):
                    self.container.mux(p)
            return
        out_stream = self.copied.get(item.stream.index)
        if out_stream is None:
            return
        item.stream = out_stream
        self.container.mux(item)

    def finish(self) -> None:
        if self.container is None:
            return
        if self.video is None:  # failed while opening: nothing worth keeping
            self.abort()
            return
        try:
            with self._writing():
                for packet in self.video.encode():
                    self.container.mux(packet)
                for index, a in self.reencoded.items():
                    for frame in self.resamplers[index].resample(None):
                        for p in a.encode(frame):
                            self.container.mux(p)
                    for p in a.encode():
                        self.container.mux(p)
                self.container.close()
                self.container = None
                if self.tmp is not None:
                    os.replace(self.tmp, self.out)
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        if self.container is not None:
            try:
                self.container.close()
            except Exception:  # the partial file is deleted anyway
                pass
            self.container = None
        if self.tmp is not None:
            self.tmp.unlink(missing_ok=True)
