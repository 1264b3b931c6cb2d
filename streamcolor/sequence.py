"""Image sequences as video: a film scan is a folder of numbered frames (DPX, TIFF, PNG).

In: a printf pattern (`scan/%06d.dpx`, FFmpeg's image2 convention, with a start number) or a
folder of numbered frames. The frames are found by listing the folder, not by counting up
from the start as FFmpeg's image2 demuxer does (it stops at the first missing number): a
scan with a missing frame is read whole, each frame at the time its number gives, and the
gaps are reported.

Out: a pattern (`out/%04d.tif`) or a folder, one file per frame numbered like the input's.
Each frame is written through `NAME.partial.EXT` and renamed, so a frame file at its name is
a finished one; the sequence is finished when its last frame is renamed into place. A marker
file in the output folder says which input a sequence under way belongs to, so a rerun of the
same command continues after the last finished frame instead of refusing an existing output.
"""

from __future__ import annotations

import glob
import itertools
import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from streamcolor import color
from streamcolor.errors import InputError, OutputError, StreamcolorError
from streamcolor.output_plan import check_writable
from streamcolor.probe import bit_depth_of
from streamcolor.sink import rescale_luma
from streamcolor.source import FrameTimes, GrayFrame, StreamInfo, VideoSource

# frame file extension -> FFmpeg codec (decoder and encoder; EXR is read, not written)
FRAME_CODECS = {".dpx": "dpx", ".tif": "tiff", ".tiff": "tiff", ".png": "png", ".exr": "exr"}
_PATTERN = re.compile(r"%(0?)(\d*)d")
DEFAULT_FPS = Fraction(24)
# where a sequence's frame rate came from -> what the summary line adds to it
SEQUENCE_RATE_FROM = {"flag": "", "header": ", the DPX header's", "default": ", the default: --fps sets it"}


@dataclass(frozen=True)
class FrameFiles:
    """Numbered frame files: folder / f"{prefix}{number:0{digits}d}{suffix}"."""

    folder: Path
    prefix: str
    digits: int  # zero-padded width; 0: no padding
    suffix: str
    numbers: tuple[int, ...] = ()

    def path(self, number: int) -> Path:
        return self.folder / f"{self.prefix}{number:0{self.digits}d}{self.suffix}"

    @property
    def pattern(self) -> str:
        return str(self.folder / f"{self.prefix}%{'0' if self.digits else ''}{self.digits or ''}d{self.suffix}")

    @property
    def codec(self) -> str:
        return FRAME_CODECS[self.suffix.lower()]

    def gaps(self) -> list[tuple[int, int]]:
        """Missing runs (first, last) between the first and the last number."""
        return [(a + 1, b - 1) for a, b in zip(self.numbers, self.numbers[1:]) if b - a > 1]


def is_pattern(path: str | os.PathLike) -> bool:
    return "://" not in str(path) and bool(_PATTERN.search(Path(path).name))


def parse_pattern(path: str | os.PathLike, error: type[StreamcolorError] = OutputError) -> FrameFiles:
    """'out/%04d.tif' -> FrameFiles (no numbers). One %d in the file name, not the folder.
    error: what a pattern that is not one raises (InputError for IN, OutputError for OUT:
    exit code 1, as an unknown container)."""
    p = Path(path)
    matches = list(_PATTERN.finditer(p.name))
    if len(matches) != 1 or "%" in _PATTERN.sub("", p.name):
        raise error(f"a frame pattern has one %d or %0Nd in its file name (as FFmpeg's), got '{p.name}'")
    m = matches[0]
    suffix = p.name[m.end() :]
    if suffix.lower() not in FRAME_CODECS:
        raise error(f"unknown frame format for '{p.name}': use {', '.join(sorted(FRAME_CODECS))} (one file per frame)")
    digits = int(m.group(2) or 0) if m.group(1) else 0
    return FrameFiles(p.parent if str(p.parent) else Path("."), p.name[: m.start()], digits, suffix)


def _listed(files: FrameFiles, start_number: int | None) -> FrameFiles:
    """files with the numbers of the frame files its folder holds (from start_number on)."""
    width = f"{{{files.digits},}}" if files.digits else "+"
    rx = re.compile(rf"{re.escape(files.prefix)}(\d{width}){re.escape(files.suffix)}")
    numbers = []
    for entry in os.scandir(files.folder):
        m = rx.fullmatch(entry.name)
        if m and entry.is_file() and (files.digits or not m.group(1).startswith("0") or m.group(1) == "0"):
            n = int(m.group(1))
            if start_number is None or n >= start_number:
                numbers.append(n)
    return FrameFiles(files.folder, files.prefix, files.digits, files.suffix, tuple(sorted(set(numbers))))


def frames_from_pattern(path: str | os.PathLike, start_number: int | None = None) -> FrameFiles:
    files = parse_pattern(path, InputError)
    if not files.folder.is_dir():
        raise InputError(f"input not found: {path} (no folder {files.folder})")
    found = _listed(files, start_number)
    if not found.numbers:
        after = f" from {start_number} on" if start_number is not None else ""
        raise InputError(f"input not found: no frames match {path}{after}")
    return found


_NUMBERED = re.compile(r"(.*?)(\d+)(\.[A-Za-z]+)")


def frames_in_folder(folder: Path, start_number: int | None = None) -> FrameFiles | None:
    """The numbered frames (DPX, TIFF, PNG) of a folder: the largest group sharing a name
    before and after the number; None when there is none. InputError when there are frames
    but none from start_number on (as frames_from_pattern says it)."""
    groups: dict[tuple[str, str], list[str]] = {}
    for entry in os.scandir(folder):
        m = _NUMBERED.fullmatch(entry.name)
        if m and m.group(3).lower() in FRAME_CODECS and entry.is_file():
            groups.setdefault((m.group(1), m.group(3)), []).append(m.group(2))
    if not groups:
        return None
    (prefix, suffix), found = max(groups.items(), key=lambda kv: len(kv[1]))
    widths = {len(d) for d in found}
    digits = min(widths) if len(widths) == 1 or any(d.startswith("0") for d in found) else 0
    files = _listed(FrameFiles(folder, prefix, digits, suffix), start_number)
    if not files.numbers:
        raise InputError(f"input not found: no frames in {folder} from {start_number} on ({len(found)} before it)")
    return files


def find_frames(src: str | os.PathLike, start_number: int | None = None) -> FrameFiles | None:
    """The frames IN names when it is a pattern or a folder of numbered frames, else None
    (a video file or URL)."""
    if is_pattern(src):
        return frames_from_pattern(src, start_number)
    p = Path(src)
    if "://" not in str(src) and p.is_dir():
        return frames_in_folder(p, start_number)
    return None


def describe_gaps(files: FrameFiles, limit: int = 3) -> str | None:
    """'3 frame(s) missing: 105, 210-211' (None when there is no gap)."""
    gaps = files.gaps()
    if not gaps:
        return None
    missing = sum(b - a + 1 for a, b in gaps)
    runs = ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in gaps[:limit])
    more = f" and {len(gaps) - limit} more gap(s)" if len(gaps) > limit else ""
    return f"{missing} frame(s) missing from {files.pattern}: {runs}{more} (each gap is kept as time)"


def open_source(src: str | os.PathLike, fps: Fraction | None = None, **kwargs) -> VideoSource:
    """A source for IN: SequenceSource for a frame pattern or a folder of numbered frames,
    else VideoSource(src, **kwargs)."""
    frames = find_frames(src)
    return SequenceSource(frames, fps) if frames is not None else VideoSource(src, **kwargs)


_FLOAT_FORMATS = {"gbrpf32le", "gbrapf32le", "grayf32le", "gbrpf16le", "grayf16le"}


def display_gray(frame: av.VideoFrame) -> av.VideoFrame:
    """A float frame of linear light (OpenEXR: scene-linear, values above 1 allowed) -> a
    gray16le frame of its luminance, sRGB-encoded and clipped to [0, 1]: the network and L*
    take display-referred gray, and swscale would carry linear values over as if encoded (a
    mid-gray 0.18 shown at code 0.18 instead of 0.46)."""
    rgb = frame.to_ndarray().astype(np.float32)
    linear = rgb @ color.RGB_TO_XYZ[1] if rgb.ndim == 3 else rgb  # relative luminance Y
    gray = color.linear_to_srgb(np.clip(linear, 0.0, 1.0))
    out = av.VideoFrame.from_ndarray(np.rint(gray * 65535.0).astype(np.uint16), format="gray16le")
    out.color_range = 2
    return out


class SequenceSource(VideoSource):
    """Numbered frame files read as one video stream: frame N at (N - first) / fps.

    The same items() contract and gray() conversion as VideoSource (it only replaces the
    container by a folder listing and one image decoder, created once); there is no audio."""

    def __init__(self, files: FrameFiles, fps: Fraction | None = None, start_at: int | None = None):
        """fps: the frame rate (None: a DPX header's, else DEFAULT_FPS). start_at: the first
        number to read (a resumed output); earlier files are not read."""
        self.files = files
        self.path = files.pattern
        self.decoder = av.CodecContext.create(files.codec, "r")
        self.decoder_name = self.decoder.name
        first = self._decode(files.numbers[0])
        if first is None:
            raise InputError(f"cannot read {files.path(files.numbers[0])}: not a {files.codec.upper()} frame")
        header = Fraction(self.decoder.framerate or 0)  # DPX: the film or TV header's frame rate
        rate = fps or header or DEFAULT_FPS
        self.rate_from = "flag" if fps else "header" if header else "default"
        fmt = first.format
        n = files.numbers[-1] - files.numbers[0] + 1  # frames' time span, gaps included
        timecode = first.metadata.get("timecode") if first.metadata else None
        self.info = StreamInfo(
            width=first.width,
            height=first.height,
            time_base=1 / rate,
            average_rate=rate,
            frames_estimate=sum(start_at is None or n >= start_at for n in files.numbers),  # what is left to do
            frames_estimate_reliable=True,
            duration_s=float(n / rate),
            stated_duration_s=None,
            pix_fmt=fmt.name,
            bit_depth=bit_depth_of(fmt),
            color_range=int(first.color_range or 0),
            colorspace=int(first.colorspace or 2),
            color_primaries=int(first.color_primaries or 2),
            color_trc=13 if files.codec == "exr" else int(first.color_trc or 2),  # EXR: sRGB-encoded here
            codec=files.codec,
            video_metadata={"timecode": timecode} if timecode else {},
        )
        self.start = Fraction(0)
        self.times = FrameTimes(1, 0)
        self.decode_errors = 0
        self.keep_depth = False
        self.start_at = start_at
        self._first = first

    def close(self) -> None:
        self._first = None

    def _decode(self, number: int) -> av.VideoFrame | None:
        try:
            data = self.files.path(number).read_bytes()
            frames = self.decoder.decode(av.Packet(data))
        except (OSError, av.FFmpegError):
            return None
        if not frames:
            return None
        return display_gray(frames[0]) if frames[0].format.name in _FLOAT_FORMATS else frames[0]

    def items(self, reencode_audio: frozenset[int] = frozenset()) -> Iterator[object]:
        """GrayFrames in number order; a file that cannot be read is skipped and counted in
        decode_errors (its time stays a gap)."""
        first_number = self.files.numbers[0]
        for index, number in enumerate(self.files.numbers):
            if self.start_at is not None and number < self.start_at:
                continue
            frame = self._first if index == 0 and self._first is not None else self._decode(number)
            self._first = None
            if frame is None:
                self.decode_errors += 1
                continue
            if (frame.width, frame.height) != (self.info.width, self.info.height):
                raise InputError(
                    f"{self.files.path(number).name} is {frame.width}x{frame.height}, the sequence "
                    f"{self.info.width}x{self.info.height}: one size per sequence"
                )
            frame.pts = number - first_number
            yield self.gray(frame, index)


# -- writing

# output frame format -> (8-bit pixel format, deep pixel formats by bits)
_RGB_FORMATS: dict[str, tuple[str, dict[int, str]]] = {
    "tiff": ("rgb24", {16: "rgb48le"}),
    "png": ("rgb24", {16: "rgb48be"}),
    "dpx": ("rgb24", {10: "gbrp10le", 12: "gbrp12le", 16: "rgb48le"}),
}
_SWS_MATRIX = {"bt709": "itu709", "fcc": "fcc", "bt470bg": "itu601", "smpte170m": "itu601", "smpte240m": "smpte240m"}
MARKER = ".streamcolor-sequence-{}.json"


@dataclass(frozen=True)
class SequencePlan:
    """As output_plan.VideoPlan for a sequence: 4:4:4 YUV at `depth` built from the colorized frame,
    converted once by swscale to the frame format's RGB (`rgb_format`)."""

    codec: str
    pix_fmt: str  # the planar YUV the colour is assembled in
    rgb_format: str
    depth: int
    time_base: Fraction | None = None
    note: str | None = None

    def chroma_shape(self, width: int, height: int) -> tuple[int, int]:
        return height, width  # 4:4:4: every pixel its own chroma (RGB frames)


def plan_sequence(target: FrameFiles, info: StreamInfo) -> SequencePlan:
    codec = target.codec
    if codec not in _RGB_FORMATS:
        raise OutputError(f"{target.suffix} frames are read, not written: write .tif, .dpx or .png frames")
    eight, deep = _RGB_FORMATS[codec]
    if info.deep:
        bits = info.bit_depth if info.bit_depth in deep else max(deep)
        return SequencePlan(codec, f"yuv444p{bits}le", deep[bits], bits)
    return SequencePlan(codec, "yuv444p", eight, 8)


def sequence_target(out: str | Path, frames: FrameFiles | None, src: str | Path) -> FrameFiles | None:
    """The sequence OUT names, or None when OUT is a video file: a pattern, or (for a
    sequence input) a folder, which gets the input's frame names."""
    if is_pattern(out):
        target = parse_pattern(out)
        if target.codec not in _RGB_FORMATS:
            raise OutputError(f"{target.suffix} frames are read, not written: write .tif, .dpx or .png frames")
        same_names = frames is not None and (target.prefix, target.suffix) == (frames.prefix, frames.suffix)
        if same_names and target.folder.resolve() == frames.folder.resolve():
            raise OutputError(f"output frames are the input frames: {out}")
        return target
    into_folder = str(out).endswith(("/", os.sep)) or Path(out).is_dir()
    if frames is not None and into_folder:
        folder = Path(out)
        if folder.resolve() == frames.folder.resolve():
            raise OutputError(f"output folder is the input folder: {out}")
        return FrameFiles(folder, frames.prefix, frames.digits, frames.suffix)
    return None


class SequenceSink:
    """Writes colorized frames as numbered files (VideoSink's interface: plan_streams, write,
    frames, a context manager that keeps the finished frames and deletes the one under way).

    number_of: GrayFrame -> its output number. marker: what the run is (input, settings),
    written beside the frames while the sequence is under way (see resume_from)."""

    def __init__(
        self,
        target: FrameFiles,
        info: StreamInfo,
        number_of: Callable[[GrayFrame], int],
        marker: dict,
        warn: Callable[[str], None] = print,
    ):
        self.target = target
        self.info = info
        self.number_of = number_of
        self.marker = marker
        self.warn = warn
        self.plan = plan_sequence(target, info)
        self.frames = 0
        self.last_number: int | None = None
        self._tmp: Path | None = None
        self.encoder = av.CodecContext.create(self.plan.codec, "w")
        self.encoder.width, self.encoder.height = info.width, info.height
        self.encoder.pix_fmt = self.plan.rgb_format
        self.encoder.time_base = info.time_base
        self.encoder.open()
        self.matrix = _SWS_MATRIX.get(info.matrix, "default")
        self.range = 2 if info.full_range else 1

    @property
    def marker_path(self) -> Path:
        return marker_path(self.target)

    def plan_streams(self) -> frozenset[int]:
        for s in self.info.other_streams:
            self.warn(f"{s.type} stream #{s.index} has nowhere to go in an image sequence: not written")
        return frozenset()

    def __enter__(self) -> SequenceSink:
        self.target.folder.mkdir(exist_ok=True)
        self.marker_path.write_text(json.dumps(self.marker), encoding="utf-8")
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self._tmp is not None:
            self._tmp.unlink(missing_ok=True)
        if exc_type is None:
            self.marker_path.unlink(missing_ok=True)  # finished: nothing to resume

    def write(self, item: object) -> None:
        if not isinstance(item, GrayFrame):
            return  # audio and subtitles: said once in plan_streams
        number = self.number_of(item)
        out = self.target.path(number)
        self._tmp = out.with_name(f"{out.stem}.partial{out.suffix}")
        try:
            packets = self.encoder.encode(self._rgb(item))
            with open(self._tmp, "wb") as fh:
                for p in packets:
                    fh.write(bytes(p))
            os.replace(self._tmp, out)
        except OSError as e:
            raise OutputError(f"cannot write {out}: {e.strerror or e}") from None
        self._tmp = None
        self.frames += 1
        self.last_number = number

    def _rgb(self, f: GrayFrame) -> av.VideoFrame:
        depth = self.plan.depth
        frame = av.VideoFrame(self.info.width, self.info.height, self.plan.pix_fmt)
        if depth > 8:
            src_bits = self.info.luma_depth if f.y_deep is not None else 8
            y = f.y_deep if f.y_deep is not None else f.y8.astype(np.uint16)
            planes, dtype = (rescale_luma(y, src_bits, depth, self.info.full_range), *f.chroma), np.uint16
        else:
            planes, dtype = (f.y8, *f.chroma), np.uint8
        size = np.dtype(dtype).itemsize
        for plane, data in zip(frame.planes, planes):
            np.frombuffer(plane, dtype).reshape(plane.height, plane.line_size // size)[:, : plane.width] = data
        return frame.reformat(
            format=self.plan.rgb_format, src_colorspace=self.matrix, src_color_range=self.range, dst_color_range=2
        )


def marker_path(target: FrameFiles) -> Path:
    return target.folder / MARKER.format(re.sub(r"[^\w.-]", "_", target.prefix + target.suffix))


def resume_from(target: FrameFiles, numbers: tuple[int, ...] | None, marker: dict, overwrite: bool) -> int | None:
    """Where a sequence output starts: None for every frame; the first number not written
    yet when a run of the same command stopped part way (its marker is there and says the
    same; the frame it was writing is deleted). numbers: the input's frame numbers (None for
    a video: 1, 2, 3...). An output with frames there otherwise is refused without
    --overwrite (never a silent overwrite)."""
    folder = target.folder
    if not folder.exists():
        if not folder.parent.is_dir():
            raise OutputError(f"output folder does not exist: {folder.parent}")
        check_writable(folder.parent)
        return None
    if not folder.is_dir():
        raise OutputError(f"output folder is not a folder: {folder}")
    check_writable(folder)
    existing = set(_listed(target, None).numbers)
    if overwrite or not existing:
        return None
    try:
        previous = json.loads(marker_path(target).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        previous = None
    if previous == marker:
        for leftover in folder.glob(f"{glob.escape(target.prefix)}*.partial{glob.escape(target.suffix)}"):
            leftover.unlink(missing_ok=True)
        expected = iter(numbers) if numbers is not None else itertools.count(1)
        missing = next((n for n in expected if n not in existing), None)
        if missing is not None:
            return missing
    first = min(existing)
    more = f" and {len(existing) - 1} more" if len(existing) > 1 else ""
    raise OutputError(
        f"output exists: {target.path(first)}{more} (give --overwrite or -y to replace {'them' if more else 'it'})"
    )
