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

from streamcolor.errors import ConfigError, OutputError
from streamcolor.source import DecodedAudio, GrayFrame, StreamInfo

# codec flag -> (FFmpeg encoder, pixel format, options)
CODECS: dict[str, tuple[str, str, dict[str, str]]] = {
    "h264": ("libx264", "yuv420p", {}),
    "hevc": ("libx265", "yuv420p", {"x265-params": "log-level=error"}),
    "ffv1": ("ffv1", "yuv420p", {"level": "3", "slices": "4", "slicecrc": "1"}),
    "prores": ("prores_ks", "yuv422p10le", {"profile": "3"}),  # ProRes 422 HQ
}
PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")


@dataclass(frozen=True)
class EncodeOptions:
    codec: str = "h264"
    crf: int = 18
    preset: str = "veryfast"
    tune: str = ""  # x264/x265 tune; live outputs use 'zerolatency' (no look-ahead, no B-frames)
    gop: int = 0  # frames between key frames; 0 = the encoder's default
    hw_encode: bool = False  # NVENC for h264/hevc where the GPU has one (H100/A100 do not: libx264/265)

    def __post_init__(self) -> None:
        if self.codec not in CODECS:
            raise ConfigError(f"unknown codec '{self.codec}'; choose one of: {', '.join(CODECS)}")
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
    options = dict(CODECS[opts.codec][2])
    if opts.codec in ("h264", "hevc"):
        options.update(crf=str(opts.crf), preset=opts.preset)
        if opts.tune:
            options["tune"] = opts.tune
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
    try:
        with _probe_container(out) as c:
            return c.format.name
    except (ValueError, av.FFmpegError):
        raise OutputError(f"unknown output container for '{out.name}': use .mp4, .mkv, .mov or .avi") from None


def _probe_container(out: Path) -> av.container.OutputContainer:
    """An in-memory output container of OUT's format, to ask what it can hold."""
    ext = out.suffix.lower().lstrip(".")
    fmt = {"mkv": "matroska", "m4v": "mp4", "ts": "mpegts", "": None}.get(ext, ext)
    if fmt is None:
        raise ValueError("no extension")
    return av.open(io.BytesIO(), "w", format=fmt)


def _holds(container: av.container.OutputContainer, codec_name: str) -> bool:
    if container.format.name in ("mpegts", "rtp_mpegts"):
        return True  # its tag table lists only MPEG-2 codecs, but it carries H.264, HEVC, AAC...
    supported = container.supported_codecs
    return not supported or codec_name in supported  # no tag table (e.g. mpegts): anything goes


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
        self.format = _format_for(self.out)  # unknown extension -> clear error before any work
        self.container: av.container.OutputContainer | None = None
        self.video: av.VideoStream | None = None
        self.copied: dict[int, av.stream.Stream] = {}  # input stream index -> output stream
        self.reencoded: dict[int, av.AudioStream] = {}
        self.frames = 0
        self._pending: list = []  # packets that arrive before the first video frame

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
        if self.live:  # live outputs carry the video only
            for s in self.info.other_streams:
                self._plan[s.index] = "drop"
            self._audio_codec = None
            return frozenset()
        with _probe_container(self.out) as probe:
            for s in self.info.other_streams:
                name = s.codec_context.name if s.codec_context else None
                if name and _holds(probe, name):
                    self._plan[s.index] = "copy"
                elif s.type == "audio":
                    self._plan[s.index] = "reencode"
                    self.warn(
                        f"audio stream #{s.index} ({name}) cannot go into {self.out.suffix}: "
                        f"re-encoding it to {probe.default_audio_codec}"
                    )
                else:
                    self._plan[s.index] = "drop"
                    self.warn(f"{s.type} stream #{s.index} ({name}) cannot go into {self.out.suffix}: not copied")
            self._audio_codec = probe.default_audio_codec
        return frozenset(i for i, how in self._plan.items() if how == "reencode")

    def _open(self, first: GrayFrame) -> None:
        info, opts = self.info, self.opts
        encoder, pix_fmt, _ = CODECS[opts.codec]
        target = str(self.out) if self.live else str(self.tmp)
        try:
            container_options = HLS_OPTIONS if self.format == "hls" else {}
            self.container = av.open(target, "w", format=self.format, options=container_options)
        except av.FFmpegError as e:
            if isinstance(e, av.error.ProtocolNotFoundError):
                scheme = str(self.out).split("://", 1)[0]
                raise OutputError(
                    f"this FFmpeg (PyAV's) has no {scheme}:// protocol; PyAV's wheels come without libsrt: "
                    "use udp:// or rtmp://, or a PyAV built against an FFmpeg with it"
                ) from None
            raise OutputError(f"cannot open {self.out}: {e.strerror or e}") from None
        if not _holds(self.container, encoder) and not _holds(self.container, opts.codec):
            raise ConfigError(f"codec {opts.codec} cannot go into {self.format} outputs; try .mkv")
        odd = info.width % 2 or info.height % 2
        if odd and opts.codec in ("h264", "hevc"):
            # x264/x265 refuse 4:2:0 with an odd size; 4:4:4 keeps the exact size and luma.
            pix_fmt = "yuv444p"
            self.warn(f"odd frame size {info.width}x{info.height}: encoding {opts.codec} 4:4:4 to keep it exact")
        if not hasattr(self, "_plan"):
            self.plan_streams()
        nvenc = f"{opts.codec}_nvenc"
        use_nvenc = opts.hw_encode and opts.codec in ("h264", "hevc") and not odd
        if use_nvenc and nvenc_works(nvenc, info.width, info.height):
            encoder = nvenc
        v = self.container.add_stream(encoder, rate=info.average_rate or 25)
        v.width, v.height, v.pix_fmt = info.width, info.height, pix_fmt
        v.time_base = info.time_base
        cc = v.codec_context
        cc.time_base = info.time_base
        cc.color_range = info.color_range if info.color_range else (2 if info.full_range else 1)
        cc.colorspace = info.colorspace
        cc.color_primaries = info.color_primaries
        cc.color_trc = info.color_trc
        options = encoder_options(opts, encoder)
        if opts.gop:
            cc.gop_size = opts.gop
        v.options = options
        if first.rotation:
            v.set_display_rotation(first.rotation)
        self.video = v
        for s in info.other_streams:
            how = self._plan.get(s.index, "drop")
            if how == "copy":
                self.copied[s.index] = self.container.add_stream_from_template(s)
            elif how == "reencode":
                a = self.container.add_stream(self._audio_codec, rate=s.codec_context.sample_rate)
                a.layout = s.codec_context.layout
                self.reencoded[s.index] = a
        try:
            self.container.start_encoding()
        except av.FFmpegError as e:
            raise OutputError(f"cannot write {self.out}: {e.strerror or e}") from None
        for item in self._pending:
            self._mux_other(item)
        self._pending.clear()

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
        frame = av.VideoFrame(self.info.width, self.info.height, "yuv420p")
        for plane, data in zip(frame.planes, (f.y8, *f.chroma)):
            buf = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)
            buf[:, : plane.width] = data
        frame.pts = f.pts
        frame.time_base = self.info.time_base
        frame.color_range = self.video.codec_context.color_range
        frame.colorspace = self.info.colorspace
        for packet in self.video.encode(frame):
            self.container.mux(packet)
        self.frames += 1

    def _mux_other(self, item: object) -> None:
        if isinstance(item, DecodedAudio):
            stream = self.reencoded[item.stream_index]
            item.frame.pts = None  # the encoder counts samples itself
            for p in stream.encode(item.frame):
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
                for a in self.reencoded.values():
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
