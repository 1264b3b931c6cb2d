"""Video sources: PyAV demux + decode into gray frames, with everything else passed through.

Items a source yields, in demux order:
    GrayFrame      one decoded video frame (luma plane + timing + colour metadata)
    Packet         an av.Packet of an audio/subtitle stream, to be copied untouched
    DecodedAudio   decoded audio, only for streams the output must re-encode
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.bitstream import BitStreamFilterContext

from streamcolor.errors import InputError, InputNotYetThere
from streamcolor.probe import (
    bit_depth_of,
    choose_video_stream,
    no_protocol_line,
    open_nvdec,
    stated_duration,
    stream_start,
    user_tags,
)

# FFmpeg AVColorSpace codes -> names in color.LUMA_COEFFS
_MATRIX_BY_CODE = {1: "bt709", 4: "fcc", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m", 9: "bt2020", 10: "bt2020"}
_FULL_RANGE_FORMATS = {"yuvj420p", "yuvj422p", "yuvj444p", "gray", "gray10le", "gray12le", "gray16le"}
_DEEP_DEPTHS = (9, 10, 12, 14, 16)  # depths FFmpeg has planar YUV (yuv444pNNle) formats for


@dataclass(frozen=True)
class StreamInfo:
    """What the sink needs to open the output once, read from the input's video stream."""

    width: int
    height: int
    time_base: Fraction
    average_rate: Fraction | None
    frames_estimate: int  # 0 when unknown
    frames_estimate_reliable: bool  # from the video stream's stated length, not the container's
    duration_s: float | None
    stated_duration_s: float | None  # the video stream's length as its header, index or tags state it
    pix_fmt: str
    bit_depth: int
    color_range: int  # FFmpeg AVColorRange: 0 unspecified, 1 limited (MPEG), 2 full (JPEG)
    colorspace: int  # FFmpeg AVColorSpace
    color_primaries: int
    color_trc: int
    codec: str
    other_streams: tuple = field(default=())  # input av streams (audio, subtitle) to carry over
    sample_aspect_ratio: Fraction | None = None  # pixel shape (32/27: 16:9 DVD); None: square or unknown
    metadata: dict = field(default_factory=dict)  # the container's tags (title, date...), technical ones left out
    video_metadata: dict = field(default_factory=dict)  # the video stream's (language, title, timecode)
    start_s: float = 0.0  # the video stream's first time, seconds on the input's clock
    field_order: int = 0  # FFmpeg AVFieldOrder: 0 unknown, 1 progressive, 2 TT, 3 BB, 4 TB, 5 BT

    @property
    def interlaced(self) -> bool:
        return self.field_order >= 2

    @property
    def deep(self) -> bool:
        """More than 8 bits per sample (10-bit ProRes, 16-bit TIFF, 10-bit DPX...)."""
        return self.bit_depth > 8

    @property
    def luma_depth(self) -> int:
        """Bits of GrayFrame.y_deep: the input's own depth where FFmpeg has planar YUV at it
        (9, 10, 12, 14, 16), else 16."""
        return self.bit_depth if self.bit_depth in _DEEP_DEPTHS else 16

    @property
    def full_range(self) -> bool:
        return self.color_range == 2 or (self.color_range == 0 and self.pix_fmt in _FULL_RANGE_FORMATS)

    @property
    def matrix(self) -> str:
        """Y'CbCr matrix; unspecified means what players assume: BT.709 from 720 lines up."""
        return _MATRIX_BY_CODE.get(self.colorspace, "bt709" if self.height >= 720 else "smpte170m")


@dataclass
class GrayFrame:
    """y8: (H, W) uint8 luma codes of the decoded frame (the input's own Y plane when
    it is 8-bit 4:2:0, else converted by swscale). pts in StreamInfo.time_base units."""

    y8: np.ndarray
    pts: int | None
    rotation: int
    index: int
    chroma: tuple[np.ndarray, np.ndarray] | None = None  # filled in by the colorizer
    interlaced: bool = False  # two fields woven: chroma is computed per field
    # (H, W) uint16 luma codes at StreamInfo.luma_depth bits, the input's own Y plane (or
    # swscale's Y of an RGB input): only when the source keeps depth (VideoSource.keep_depth)
    y_deep: np.ndarray | None = None


@dataclass
class DecodedAudio:
    stream_index: int
    frame: av.AudioFrame


class FrameTimes:
    """Decoded frames' times made valid: strictly increasing, none missing, starting where
    the container's start is moved to zero.

    Which of pts and dts to trust is FFmpeg's own rule (libavcodec/decode.c,
    guess_correct_pts, what ffmpeg calls best_effort_timestamp): the one that has gone
    backwards fewer times so far. MPEG-4 with packed B-frames in AVI carries dts only, so
    its frames' pts come out of order while their dts are right. A time still missing or not
    after the previous frame's becomes the previous one plus one frame (`step` ticks), so
    repeats, jumps back and gaps never reach the muxer and no frame is dropped."""

    def __init__(self, step: int, start: int = 0):
        self.step = max(1, step)
        self.start = start
        self.faulty_pts = self.faulty_dts = 0
        self.last_pts: int | None = None
        self.last_dts: int | None = None
        self.last: int | None = None
        self.first: int | None = None
        self.gap = 0  # ticks between the last two frames
        self.repaired = 0

    @property
    def span(self) -> int:
        """Ticks from the first frame to the end of the last, which is taken to last as long
        as the one before it (0 before any frame)."""
        if self.first is None:
            return 0
        return self.last - self.first + (self.gap or self.step)

    def __call__(self, pts: int | None, dts: int | None) -> int:
        if dts is not None:
            self.faulty_dts += self.last_dts is not None and dts <= self.last_dts
            self.last_dts = dts
        if pts is not None:
            self.faulty_pts += self.last_pts is not None and pts <= self.last_pts
            self.last_pts = pts
        t = pts if pts is not None and (self.faulty_pts <= self.faulty_dts or dts is None) else dts
        t = None if t is None else t - self.start
        if t is None or (self.last is not None and t <= self.last):
            t = 0 if self.last is None else self.last + self.step
            self.repaired += 1
        if self.first is None:
            self.first = t
        else:
            self.gap = t - self.last
        self.last = t
        return t


def _ticks(seconds: Fraction, time_base: Fraction) -> int:
    return int(round(seconds / time_base))


def _y_plane(frame: av.VideoFrame, dtype: type = np.uint8) -> np.ndarray:
    """(H, W) copy of the Y plane of a planar YUV or gray frame (line padding dropped);
    dtype np.uint16 for the 9- to 16-bit little-endian formats."""
    p = frame.planes[0]
    size = np.dtype(dtype).itemsize
    return np.frombuffer(p, dtype).reshape(p.height, p.line_size // size)[:, : p.width].copy()


def _has_y_plane(name: str, depth: int) -> bool:
    """Whether plane 0 of pixel format `name` is the luma at `depth` bits, LSB-aligned
    (yuv420p10le, yuv422p16le, gray12le...: not P010's MSB-aligned, not big-endian)."""
    suffix = f"p{depth}le" if name.startswith("yuv") else f"{depth}le"
    return (name.startswith(("yuv", "yuvj")) or name.startswith("gray")) and name.endswith(suffix)


class VideoSource:
    """Opens a file or URL with PyAV. A context manager; iterate with items()."""

    def __init__(
        self,
        path: str | os.PathLike,
        threads: bool = True,
        fmt: str | None = None,
        options: dict[str, str] | None = None,
        timeout: tuple[float, float] | None = None,
        carry_streams: bool = True,
        hw_decode: bool = False,
        stream: int | None = None,
    ):
        """threads: frame-threaded decoding (throughput for files; it delays each frame, so
        live sources turn it off). fmt/options: FFmpeg input format and its options (a
        camera: fmt 'v4l2'). timeout: (open, read) seconds for network inputs.
        carry_streams: also read the audio and subtitle streams (live mode does not).
        hw_decode: decode on the GPU with NVDEC (h264_cuvid, hevc_cuvid...) when FFmpeg
        has that decoder and an NVIDIA driver is present; CPU decoding otherwise.
        stream: the index of the video stream to colorize; None: choose_video_stream()."""
        self.path = str(path)
        device = fmt is not None  # a camera path is not checked like a file
        if not device and "://" not in self.path and not Path(self.path).exists():
            raise InputError(f"input not found: {self.path}")
        if not device and "://" not in self.path and Path(self.path).is_dir():
            raise InputError(f"input is a folder, not a video: {self.path}")
        try:
            self.container = av.open(
                self.path, format=fmt, options=options or {}, timeout=timeout, metadata_errors="ignore"
            )
        except av.error.ProtocolNotFoundError:
            raise InputError(no_protocol_line(self.path.split("://", 1)[0])) from None
        except (av.error.ExitError, av.error.ConnectionRefusedError, av.error.TimeoutError) as e:
            if "://" not in self.path:
                raise InputError(f"cannot open {self.path}: {e.strerror or e}") from None
            # our open timeout ends the wait as an 'exit requested': nothing arrived
            why = (
                "connection refused"
                if isinstance(e, ConnectionRefusedError)
                else f"nothing received in {timeout[0] if timeout else '?'} s"
            )
            raise InputNotYetThere(f"cannot open {self.path}: {why} (is the sender running?)") from None
        except av.FFmpegError as e:
            raise InputError(f"cannot open {self.path}: not a video FFmpeg can read ({e.strerror or e})") from None
        try:
            self.stream = choose_video_stream(self.container, stream, self.path)
        except InputError:
            self.container.close()
            raise
        cc = self.stream.codec_context
        if threads:
            cc.thread_type = "AUTO"  # frame threading: throughput for files (adds latency)
        fmt = cc.format
        if fmt is None or not cc.width or not cc.height:
            self.container.close()
            raise InputError(f"{self.path}: the video stream has no size or pixel format (broken header?)")
        stated = stated_duration(self.stream)
        # the container's is the longest stream's (audio or subtitles may run longer): a
        # progress estimate only, never a reason to say the video ended early
        duration = stated or (self.container.duration / 1e6 if self.container.duration else None)
        # FFmpeg's own guess (what the ffmpeg command writes): the average rate of a stream
        # coded with a fine clock (x264 in 1/250 s ticks in MPEG-TS) can read 250 fps
        rate = self.stream.guessed_rate or self.stream.average_rate
        frames = int(round(duration * rate)) if duration and rate else self.stream.frames
        carried = tuple(s for s in self.container.streams if carry_streams and s.type in ("audio", "subtitle"))
        self.info = StreamInfo(
            width=cc.width,
            height=cc.height,
            time_base=self.stream.time_base,
            average_rate=rate,
            frames_estimate=frames,
            frames_estimate_reliable=stated is not None,
            duration_s=duration,
            stated_duration_s=stated,
            pix_fmt=fmt.name,
            bit_depth=bit_depth_of(fmt),
            color_range=int(cc.color_range or 0),
            colorspace=int(cc.colorspace or 2),
            color_primaries=int(cc.color_primaries or 2),
            color_trc=int(cc.color_trc or 2),
            codec=cc.name,
            other_streams=carried,
            sample_aspect_ratio=self.stream.sample_aspect_ratio or cc.sample_aspect_ratio or None,
            metadata=user_tags(self.container.metadata),
            video_metadata=user_tags(self.stream.metadata),
            field_order=int(cc.field_order or 0),
            start_s=stream_start(self.stream),
        )
        self.decode_errors = 0
        # Every stream is moved by the same start (the container's, the earliest of all its
        # streams), so outputs start at zero and the A/V offset is kept: an MPEG-TS clock
        # that starts at 3600 s does not become an hour of nothing.
        self.start = Fraction(self.container.start_time or 0, 1_000_000)
        step = _ticks(1 / rate, self.stream.time_base) if rate else 1
        self.times = FrameTimes(step, _ticks(self.start, self.stream.time_base))
        self.decoder = open_nvdec(self.stream) if hw_decode else None
        self.decoder_name = self.decoder.name if self.decoder is not None else cc.name
        # Set by whoever plans a deep output (api.colorize_video): frames then carry y_deep too.
        self.keep_depth = False
        self.packed = False  # MPEG-4 packed B-frames found (and unpacked) in the video stream

    def __enter__(self) -> VideoSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.container.close()

    def items(self, reencode_audio: frozenset[int] = frozenset()) -> Iterator[object]:
        """Yield GrayFrame / av.Packet / DecodedAudio in demux order.

        reencode_audio: indexes of audio streams to decode instead of copying.
        Undecodable packets are skipped and counted in self.decode_errors; a demuxer
        that gives up mid-file ends the iteration (counted too), so a damaged file
        still produces everything before the damage.
        """
        index = 0
        # DivX/Xvid "packed bitstream" (issue 23): a P-frame's packet also holds the next
        # B-frame, and a placeholder (N-VOP) packet follows; decoded as they are, the frames'
        # times come out one slot late (80 ms gaps at 25 fps). FFmpeg's own bitstream filter
        # moves each B-frame back into its slot, as `ffmpeg -bsf:v mpeg4_unpack_bframes`; it
        # passes an unpacked stream through untouched, whatever the container (AVI, Matroska).
        unpack = None
        if self.stream.codec_context.name == "mpeg4" and self.decoder is None:
            unpack = BitStreamFilterContext("mpeg4_unpack_bframes", in_stream=self.stream)
        wanted = [self.stream, *self.info.other_streams]
        demux = self.container.demux(wanted)
        while True:
            try:
                packet = next(demux)
            except StopIteration:
                break
            except av.FFmpegError:
                self.decode_errors += 1
                break
            if packet.stream.index != self.stream.index:
                if packet.stream.index in reencode_audio:
                    try:
                        for af in packet.decode():
                            if af.pts is not None and af.time_base:  # moved like every stream
                                af.pts -= _ticks(self.start, af.time_base)
                            yield DecodedAudio(packet.stream.index, af)
                    except av.FFmpegError:
                        self.decode_errors += 1
                elif packet.dts is not None or packet.size:
                    # Packets without dts are legal (remux.py in PyAV explains why the flush
                    # packet is the one to skip: it has no data).
                    yield self._moved(packet)
                continue
            for frame in self._decode_video(packet, unpack):
                yield self.gray(frame, index)
                index += 1

    def _decode_video(self, packet: av.Packet, unpack: BitStreamFilterContext | None) -> list[av.VideoFrame]:
        """The frames a video packet completes (the demuxer's last, empty packet flushes).
        unpack: MPEG-4's packed B-frames filter, or None."""
        packets: list[av.Packet | None] = [packet]
        frames = []
        try:
            if unpack is not None:
                flush, size = not packet.size, packet.size  # read first: the filter takes the packet's data
                packets = unpack.filter(None if flush else packet)
                if flush:
                    packets.append(None)  # then flush the decoder
                self.packed = self.packed or any(q.size != size for q in packets if q is not None)
                if self.packed:
                    # the container's pts were made for the packed packets (one a slot late); the
                    # decode order's dts are right, so the frames' times come from them (FrameTimes)
                    for q in packets:
                        if q is not None:
                            q.pts = None
            for p in packets:
                if self.decoder is not None:
                    frames.extend(self.decoder.decode(p))
                else:
                    frames.extend(self.stream.codec_context.decode(p))
        except av.FFmpegError:
            self.decode_errors += 1
        return frames

    def _moved(self, packet: av.Packet) -> av.Packet:
        """packet with its times moved by the common start (see __init__)."""
        shift = _ticks(self.start, packet.time_base) if packet.time_base else 0
        if shift:
            if packet.pts is not None:
                packet.pts -= shift
            if packet.dts is not None:
                packet.dts -= shift
        return packet

    def gray(self, frame: av.VideoFrame, index: int) -> GrayFrame:
        pts = self.times(frame.pts, frame.dts)
        interlaced = bool(frame.interlaced_frame) or self.info.interlaced
        rotation = int(frame.rotation or 0)
        if self.keep_depth:
            y_deep = self._deep_luma(frame)
            # the 8 bits the network and the chroma see: the deep codes rounded (one shift,
            # cheaper than a second swscale pass at 2K)
            shift = self.info.luma_depth - 8
            y8 = np.minimum((y_deep + (1 << (shift - 1))) >> shift, 255).astype(np.uint8)
            return GrayFrame(y8=y8, pts=pts, rotation=rotation, index=index, interlaced=interlaced, y_deep=y_deep)
        if frame.format.name not in ("yuv420p", "yuvj420p", "nv12"):  # nv12 (NVDEC): plane 0 is Y too
            # 10-bit, 4:2:2, 4:4:4, RGB, gray...: one swscale pass to 8-bit 4:2:0. Luma keeps
            # its range (the output is tagged the same), rounded to 8 bits.
            rng = 2 if self.info.full_range else 1
            frame = frame.reformat(format="yuv420p", src_color_range=rng, dst_color_range=rng)
        # a frame flagged interlaced, or any frame of a stream declared so (some decoders
        # flag only the frames, some containers only the stream)
        return GrayFrame(y8=_y_plane(frame), pts=pts, rotation=rotation, index=index, interlaced=interlaced)

    def _deep_luma(self, frame: av.VideoFrame) -> np.ndarray:
        """(H, W) uint16 luma at info.luma_depth bits: a planar YUV or gray frame's own Y plane,
        untouched; anything else (RGB DPX/TIFF, packed formats) through one swscale pass to
        planar YUV at that depth, in the range the output is tagged with."""
        depth = self.info.luma_depth
        if not _has_y_plane(frame.format.name, depth):
            rng = 2 if self.info.full_range else 1
            frame = frame.reformat(format=f"yuv444p{depth}le", src_color_range=rng, dst_color_range=rng)
        return _y_plane(frame, np.uint16)
