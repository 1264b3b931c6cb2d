"""Video sinks: encode colorized frames and mux them with the input's other streams.

The output is written to a partial file beside OUT (`NAME.partial.EXT`) and renamed
to OUT only after the encoders are flushed and the trailer is written; on any failure
or Ctrl-C the partial file is deleted, so a file at OUT is always a finished one.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from streamcolor.errors import OutputError
from streamcolor.output_plan import (
    _NO_FIELDS,
    _NO_SAR_IN_BITSTREAM,
    CODECS,
    HLS_OPTIONS,
    EncodeOptions,
    _holds,
    _probe_container,
    _rate,
    encoder_options,
    is_url,
    nvenc_works,
    partial_path,
    plan_video,
)
from streamcolor.probe import no_protocol_line, stream_start, user_tags
from streamcolor.source import DecodedAudio, GrayFrame, StreamInfo

# Audio encoders by the codec a container asks for, where FFmpeg's default for that codec
# is not the one to use (its native Opus encoder is experimental).
_AUDIO_ENCODERS = {"opus": "libopus", "mp3": "libmp3lame"}


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
