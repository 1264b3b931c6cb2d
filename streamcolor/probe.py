"""What an input holds, before decoding: which video stream is the programme, its tags, start
and stated length, its depth; which protocols FFmpeg has; whether NVDEC can decode it."""

from __future__ import annotations

from pathlib import Path

import av

from streamcolor.errors import InputError

# Tags a muxer writes about itself or the encoding, not the user's: never copied (the
# output's muxer and encoder write their own; copying Matroska's statistics would lie).
_TECHNICAL_TAGS = {"encoder", "major_brand", "minor_version", "compatible_brands", "handler_name", "vendor_id"}


_TECHNICAL_PREFIXES = ("_statistics", "number_of_", "bps", "duration")


def user_tags(tags: dict) -> dict:
    """The tags worth carrying to the output: title, language, artist, date, timecode..."""
    return {
        k: v
        for k, v in tags.items()
        if k.lower() not in _TECHNICAL_TAGS and not k.lower().startswith(_TECHNICAL_PREFIXES)
    }


def stream_start(stream: av.stream.Stream) -> float:
    """A stream's first time in seconds on its container's clock (0 when not stated)."""
    return float(stream.start_time * stream.time_base) if stream.start_time is not None and stream.time_base else 0.0


def stated_duration(stream: av.VideoStream) -> float | None:
    """Seconds the container says this stream lasts: its header or index (MP4, MOV, AVI;
    MPEG-TS/PS from the last timestamps), else Matroska's per-track DURATION tag. AVI's
    header counts the stream's length in ticks of its time base (dwLength), which survives
    a cut that takes the index with it."""
    seconds = float(stream.duration * stream.time_base) if stream.duration and stream.time_base else None
    if stream.container.format.name == "avi" and stream.frames and stream.time_base:
        seconds = max(seconds or 0.0, float(stream.frames * stream.time_base))
    if seconds:
        return seconds
    tag = stream.metadata.get("DURATION") or stream.metadata.get("duration")
    if tag:
        try:
            h, m, sec = tag.split(":")
            return int(h) * 3600 + int(m) * 60 + float(sec)
        except ValueError:
            return None
    return None


def no_protocol_line(scheme: str) -> str:
    """The one line for a URL whose protocol this FFmpeg lacks (srt:// in PyAV's wheels)."""
    extra = "; PyAV's wheels come without libsrt" if scheme.lower() == "srt" else ""
    return (
        f"this FFmpeg (PyAV's) has no {scheme}:// protocol{extra}: use udp:// or rtmp://, "
        "or a PyAV built against an FFmpeg with it"
    )


# Protocols every FFmpeg build PyAV ships has; others (srt://, rist://, ...) are checked.
_BUILTIN_PROTOCOLS = {"file", "udp", "tcp", "rtp", "rtsp", "rtmp", "http", "https", "pipe"}


def has_protocol(url: str) -> bool:
    """Whether this FFmpeg knows url's protocol. FFmpeg has no public list in PyAV, so an
    empty URL of that scheme is opened: a missing protocol says so at once, a present one
    fails on the empty address (nothing is connected to)."""
    scheme = url.split("://", 1)[0].lower()
    if "://" not in url or scheme in _BUILTIN_PROTOCOLS:
        return True
    try:
        av.open(f"{scheme}://", timeout=(1.0, 1.0)).close()
    except av.error.ProtocolNotFoundError:
        return False
    except (av.FFmpegError, OSError, ValueError):
        return True
    return True


def bit_depth_of(fmt: av.VideoFormat) -> int:
    return max(c.bits for c in fmt.components)


def nvidia_driver_present() -> bool:
    return Path("/proc/driver/nvidia/version").exists() or Path("/dev/nvidia0").exists()


def nvdec_name(codec: str) -> str | None:
    """FFmpeg's NVDEC decoder for codec ('h264' -> 'h264_cuvid'), when this PyAV has it."""
    name = f"{codec}_cuvid"
    return name if name in av.codecs_available else None


def open_nvdec(stream: av.VideoStream) -> av.CodecContext | None:
    """An NVDEC decoder for stream, or None (no driver, no such decoder, or it fails to open)."""
    name = nvdec_name(stream.codec_context.name)
    if name is None or not nvidia_driver_present():
        return None
    try:
        ctx = av.CodecContext.create(name, "r")
        src = stream.codec_context
        ctx.extradata = src.extradata
        ctx.width, ctx.height = src.width, src.height
        ctx.open()
    except (av.FFmpegError, ValueError):
        return None
    return ctx


# Video streams that are pictures, not the programme: cover art (an MP4's "covr", an MP3's
# APIC), thumbnails; FFmpeg's own stream choice passes over them too.
_NOT_PROGRAMME = ("attached_pic", "timed_thumbnails", "still_image")


def _flags(stream: av.stream.Stream) -> set[str]:
    d = stream.disposition
    return {name for name, flag in av.stream.Disposition.__members__.items() if d & flag}


def _maybe_picture(s: av.VideoStream) -> bool:
    """One frame (or an unknown count) of a still-picture codec: cover art whose flag was
    lost on the way in (Matroska and NUT keep no attached_pic flag), or MJPEG video whose
    container gives no frame count; such a stream is taken only when there is no other."""
    return s.codec_context.name in _PICTURE_CODECS and s.frames <= 1


_PICTURE_CODECS = {"mjpeg", "png", "bmp", "gif", "webp", "tiff", "jpegls", "jpeg2000"}


def choose_video_stream(container: av.container.InputContainer, index: int | None, path: str) -> av.VideoStream:
    """The video stream to colorize: `index` when given, else the way FFmpeg chooses
    (av_find_best_stream and the ffmpeg command): cover art and thumbnails passed over, a
    lone still picture after any moving stream, then a default disposition first, then the
    largest picture, then the first. A one-line
    InputError when nothing usable is there."""
    streams = list(container.streams)
    if index is not None:
        if not 0 <= index < len(streams):
            raise InputError(f"{path} has no stream #{index} (it has {len(streams)})")
        if streams[index].type != "video":
            videos = ", ".join(str(s.index) for s in container.streams.video) or "none"
            raise InputError(f"stream #{index} of {path} is {streams[index].type}, not video (video streams: {videos})")
        return streams[index]
    videos = [s for s in container.streams.video if s.codec_context.width and s.codec_context.height]
    if not videos:
        raise InputError(f"{path} has no video stream")
    programme = [s for s in videos if not _flags(s) & set(_NOT_PROGRAMME)]
    if not programme:
        names = ", ".join(f"#{s.index}" for s in videos)
        raise InputError(f"{path} has no video, only a picture (cover art): {names}; give --stream N to colorize it")

    def score(s: av.VideoStream) -> tuple[bool, bool, int, int]:
        area = s.codec_context.width * s.codec_context.height
        return not _maybe_picture(s), "default" in _flags(s), area, -s.index

    return max(programme, key=score)
