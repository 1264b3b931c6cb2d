"""The library's entry points: colorize a video file or images. The CLI only calls these."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path, PurePosixPath

import cv2
import numpy as np

from streamcolor import color
from streamcolor.colorizer import Colorizer
from streamcolor.config import RunConfig
from streamcolor.deflicker import deflicker_items
from streamcolor.engines.registry import create_engine
from streamcolor.errors import ConfigError, InputError, OutputError
from streamcolor.hints.file import HintFile
from streamcolor.memory import keep_frame_buffers
from streamcolor.model import DEFAULT_MODEL, HINTS_MODEL, load_card
from streamcolor.output_plan import check_output_path, check_writable
from streamcolor.pipeline import StageTimes, colorize_items, run_pipeline, timed
from streamcolor.sequence import (
    FRAME_CODECS,
    SEQUENCE_RATE_FROM,
    SequenceSink,
    SequenceSource,
    describe_gaps,
    find_frames,
    resume_from,
    sequence_target,
)
from streamcolor.sink import VideoSink
from streamcolor.source import GrayFrame, VideoSource
from streamcolor.temporal import MODES as TEMPORAL_MODES


@dataclass(frozen=True)
class ColorizeConfig(RunConfig):
    """Resolved once from flags and the model card; each component gets its own part. The
    fields every run shares are RunConfig's (streamcolor/config.py); model None: DEFAULT_MODEL,
    or HINTS_MODEL when there are hints (the default model takes none)."""

    temporal: str = "bidirectional"  # measured best for files (benchmarks/temporal_quality.py)
    deflicker: bool = False  # steady the luma of old film first (changes the output's luma)
    batch: int = 4

    def __post_init__(self) -> None:
        if self.model is None:
            object.__setattr__(self, "model", HINTS_MODEL if self.hints else DEFAULT_MODEL)
        if self.temporal not in TEMPORAL_MODES:
            raise ConfigError(f"unknown temporal mode '{self.temporal}'; choose one of: {', '.join(TEMPORAL_MODES)}")
        super().__post_init__()
        if self.batch < 1:
            raise ConfigError(f"batch must be at least 1, got {self.batch}")

    def __repr__(self) -> str:
        # the field order of before RunConfig: the repr marks a resumable output with its
        # settings (sequence.resume_from, shots.chunk_folder), so it must not change
        names = (
            "model", "backend", "temporal", "keyframe_interval", "deflicker", "batch",
            "threads", "precision", "encode", "hints", "vividness",
        )  # fmt: skip
        return f"ColorizeConfig({', '.join(f'{n}={getattr(self, n)!r}' for n in names)})"


@dataclass
class Progress:
    frames: int
    total: int  # 0 when unknown
    elapsed: float


@dataclass
class VideoSummary:
    frames: int
    seconds: float
    decode_errors: int
    times: StageTimes
    backend: str
    out: Path | str | None = None  # the file written (OUT, or OUT/IN's name when OUT is a folder), or a pattern
    hints: str | None = None  # what the hints did, one line (HintStats.line)
    rate: str | None = None  # an image sequence's frame rate and where it came from ('24 fps, the default')
    resumed: int | None = None  # a sequence output continued from this frame number

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def make_colorizer(cfg: ColorizeConfig) -> Colorizer:
    """The engine cfg asks for, wrapped in the Colorizer that suits it: frames stay on the
    GPU with the PyTorch and TensorRT engines, on the CPU with ONNX Runtime."""
    card = load_card(cfg.model)
    if getattr(cfg, "hints", None) and not card.hints:
        raise ConfigError(f"model {Path(cfg.model).name} takes no hints; leave out --model to use the hint model")
    engine = create_engine(cfg.backend, card, cfg.threads, getattr(cfg, "precision", None))
    if hasattr(engine, "run_tensor") and not card.hints:  # hint models: frames on the CPU
        from streamcolor.gpu_colorizer import TorchColorizer

        return TorchColorizer(engine, card, vividness=cfg.vividness)
    return Colorizer(engine, card, vividness=cfg.vividness)


def describe(colorizer: Colorizer) -> str:
    """'onnx (CPUExecutionProvider)', 'torch (cuda:fp16:compiled)'... for the summary line."""
    engine = colorizer.engine
    return f"{engine.name} ({getattr(engine, 'provider', '?')})"


def colorize_video(
    src: str | Path,
    out: str | Path,
    cfg: ColorizeConfig | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    warn: Callable[[str], None] = print,
    colorizer: Colorizer | None = None,
    overwrite: bool = False,
    stream: int | None = None,
    fps: Fraction | None = None,
    start_number: int | None = None,
) -> VideoSummary:
    """Colorize one video file (or URL) into OUT, keeping timestamps, audio and metadata.
    IN and OUT may also be image sequences (streamcolor/sequence.py): a printf pattern
    ('scan/%06d.dpx') or a folder of numbered frames.

    overwrite: replace an existing OUT (refused otherwise). stream: the input stream index
    to colorize (default: the best video stream, as FFmpeg chooses it). fps: a sequence's
    frame rate (default: a DPX header's, else 24). start_number: a sequence's first number."""
    cfg = cfg or ColorizeConfig()
    is_url = "://" in str(src)
    frames = find_frames(src, start_number)
    if frames is None and Path(src).is_dir() and not is_url:
        raise InputError(
            f"input is a folder with no numbered frames ({', '.join(sorted(FRAME_CODECS))}): {src}; "
            f"to colorize the videos in it, use: streamcolor batch {src} OUTDIR"
        )
    if frames is None and (fps is not None or start_number is not None):
        raise ConfigError("--fps and --start-number are for image sequences (a pattern such as scan/%06d.dpx)")
    target = sequence_target(out, frames, src)
    resume = None
    if target is None:
        out = Path(out)
        if out.is_dir():  # cp's rule: into an existing folder, under the input's name
            if is_url or frames is not None:
                raise OutputError(f"output is a folder: {out} (give an output file name)")
            out = out / Path(src).name
        check_output_path(out, [] if is_url or frames is not None else [Path(src)], overwrite)
    colorizer = colorizer or make_colorizer(cfg)
    keep_frame_buffers()
    start = time.perf_counter()
    times = StageTimes()
    gpu = hasattr(colorizer.engine, "run_tensor")  # a GPU engine: NVDEC/NVENC where the GPU has them
    marker = {"input": str(Path(src).resolve()) if not is_url else str(src), "settings": repr(cfg)}
    if target is not None:
        resume = resume_from(target, frames.numbers if frames else None, marker, overwrite)
    if frames is not None:
        source_cm = SequenceSource(frames, fps, start_at=resume)
    else:
        source_cm = VideoSource(src, hw_decode=gpu, stream=stream)
    with source_cm as source:
        info = source.info
        encode = dataclasses.replace(cfg.encode, hw_encode=gpu) if gpu else cfg.encode
        if target is not None:
            first = frames.numbers[0] if frames else 1
            # a sequence's frames keep their numbers; a video's are numbered from 1 (FFmpeg's)
            number_of = (lambda f: first + f.pts) if frames else (lambda f: first + f.index)
            sink = SequenceSink(target, info, number_of, marker, warn=warn)
            out = target.pattern
        else:
            sink = VideoSink(out, info, encode, warn=warn)
        reencode = sink.plan_streams()
        source.keep_depth = sink.plan.depth > 8  # frames carry their deep luma for the sink
        if frames is not None:
            gaps = describe_gaps(frames)
            if gaps:
                warn(gaps)
        skip_before = resume if resume is not None and frames is None else None

        def decode():
            items = timed(source.items(reencode), times, "decode")
            if skip_before is not None:  # a video into a resumed sequence: its written frames skipped
                items = (i for i in items if not isinstance(i, GrayFrame) or number_of(i) >= skip_before)
            return deflicker_items(items) if cfg.deflicker else items

        tracker = None
        if cfg.hints:
            from streamcolor.hints.tracker import HintTracker

            tracker = HintTracker(cfg.hints, colorizer, info.width, info.height, info.full_range, warn=warn)
            if cfg.temporal == "bidirectional" and not is_url:  # hints also reach back to their shot's start
                from streamcolor.hints.backward import backward_positions

                rate = float(info.average_rate or 25)
                again_cm = (
                    SequenceSource(frames, fps, start_at=resume)
                    if frames is not None
                    else VideoSource(src, stream=stream, carry_streams=False)
                )
                with again_cm as again:
                    tracker.carry_back(
                        backward_positions(
                            (f for f in again.items() if hasattr(f, "y8")),
                            lambda f: float(f.pts * info.time_base) if f.pts is not None else f.index / rate,
                            cfg.hints,
                            colorizer,
                            info.full_range,
                        )
                    )

        def colorize(up):
            chroma_shape = sink.plan.chroma_shape(info.width, info.height)
            return colorize_items(
                up,
                colorizer,
                info,
                cfg.batch,
                times,
                cfg.temporal,
                cfg.keyframe_interval,
                tracker=tracker,
                chroma_shape=chroma_shape,
                depth=sink.plan.depth,
            )

        def write(item) -> None:
            t = time.perf_counter()
            sink.write(item)
            times.encode += time.perf_counter() - t
            if on_progress and sink.frames and hasattr(item, "y8"):
                on_progress(Progress(sink.frames, info.frames_estimate, time.perf_counter() - start))

        with sink:
            run_pipeline(decode, colorize, write)
            if sink.frames == 0:
                raise InputError(f"{src} contains no decodable video frames")
        if source.decode_errors and frames is not None:
            warn(f"skipped {source.decode_errors} frame file(s) that could not be read (their time kept as a gap)")
        elif source.decode_errors:
            warn(f"skipped {source.decode_errors} damaged packet(s) that could not be decoded")
        short = early_end(source.times.span * info.time_base, info.stated_duration_s, info.average_rate)
        if short:
            warn(f"the input ended early: {sink.frames} frames, {short} (damaged or truncated?)")
    seconds = time.perf_counter() - start
    hints_line = None
    if tracker is not None:
        if tracker.pending:
            first = tracker.pending[0]
            when = f"frame {first.frame}" if first.frame is not None else f"{first.time:g} s"
            warn(
                f"{len(tracker.pending)} hint(s) never started: the input ended first "
                f"(e.g. the hint at line {first.line}, at {when})"
            )
        hints_line = tracker.stats.line(tracker.total_hints, len(tracker.pending), len(tracker.references))
    rate = None
    if frames is not None:
        rate = f"{float(info.average_rate):g} fps{SEQUENCE_RATE_FROM[source.rate_from]}"
    return VideoSummary(
        sink.frames, seconds, source.decode_errors, times, describe(colorizer), out, hints_line, rate, resume
    )


def early_end(decoded_s: float, stated_s: float | None, rate: float | None) -> str | None:
    """'1.8 s of the 3.0 s its header states' when the frames decoded cover clearly less time
    than the container says the video stream lasts (more than 5 % and a frame short)."""
    if not stated_s:
        return None
    frame = 1 / float(rate) if rate else 0.0
    if float(decoded_s) >= 0.95 * stated_s - frame:
        return None
    return f"{float(decoded_s):.1f} s of the {stated_s:.1f} s the container states"


# Photo file extensions (compared lower-cased) -> the OpenCV encoder that writes them: a
# folder's photos are found by these, and each output keeps its input's name (a .jfif is a
# JPEG file under another name, so it is written by the JPEG encoder under its own name).
_ENCODE_AS = {
    ".png": ".png",
    ".jpg": ".jpg",
    ".jpeg": ".jpg",
    ".jpe": ".jpg",
    ".jfif": ".jpg",
    ".bmp": ".bmp",
    ".tif": ".tif",
    ".tiff": ".tif",
    ".webp": ".webp",
    ".gif": ".gif",
}
IMAGE_SUFFIXES = {ext for ext, enc in _ENCODE_AS.items() if cv2.haveImageWriter(f"x{enc}")}


# What each output format holds (OpenCV's encoders): 16-bit samples, an alpha channel,
# EXIF/XMP (written by imencodeWithMetadata, OpenCV >= 4.12).
_DEEP = {".png", ".tif", ".tiff"}
_ALPHA = {".png", ".tif", ".tiff", ".webp", ".bmp"}
_METADATA = {".png", ".jpg", ".jpeg", ".webp"}
_WITH_METADATA = hasattr(cv2, "imdecodeWithMetadata")


def colorize_photo(
    img: np.ndarray, colorizer: Colorizer, hints: HintFile | None = None, warn: Callable[[str], None] = print
) -> np.ndarray:
    """A decoded photo, as OpenCV gives it: (H, W) gray, (H, W, 3) BGR or (H, W, 4) BGRA,
    uint8 or uint16 -> the same layout in colour (gray -> BGR, gray+alpha -> BGRA), the
    same depth. Colour goes into the colour channels only: alpha is copied untouched, and
    a 16-bit photo's L* is its own 16-bit lightness, not the 8 bits the network sees.
    hints: user hints and reference photos (streamcolor/hints/; times are ignored, every
    hint applies); the colorizer must then run a hint model."""
    top = 65535.0 if img.dtype == np.uint16 else 255.0
    alpha = img[..., 3] if img.ndim == 3 and img.shape[2] == 4 else None
    if img.ndim == 2:
        gray = img.astype(np.float32) / top
    else:
        gray = color.rgb_to_gray(img[..., 2::-1].astype(np.float32) / top)
    y8 = (gray * 255.0 + 0.5).astype(np.uint8)
    if hints:
        from streamcolor.hints.photo import colorize_with_hints

        lab = colorizer._lab_at(y8, colorize_with_hints(y8, colorizer, hints, True, warn), y8.shape, True)
    else:
        lab = colorizer.colorize_lab(y8, full_range=True)
    if img.dtype == np.uint16:
        lab[..., 0] = color.gray_to_lightness(gray)
    rgb = np.clip(cv2.cvtColor(lab, cv2.COLOR_Lab2RGB), 0.0, 1.0)
    out = (rgb[..., ::-1] * top + 0.5).astype(img.dtype)
    return out if alpha is None else np.dstack([out, alpha])


def colorize_image_file(
    src: Path,
    out: Path,
    colorizer: Colorizer,
    warn: Callable[[str], None] = print,
    hints: HintFile | None = None,
    icc_dropped: list[Path] | None = None,
    data: bytes | None = None,
) -> None:
    """src -> out in colour, keeping alpha, 16 bits and EXIF/XMP where out's format holds
    them; one warning per thing dropped. icc_dropped: where a folder run collects the photos
    whose ICC profile was left out, to say it once (None: said here). data: the file's bytes
    when they were not read from src (a photo fetched from a URL; src is then its name)."""
    data = np.fromfile(src, np.uint8) if data is None else np.frombuffer(data, np.uint8)
    img, types, chunks = None, (), []
    if data.size and _WITH_METADATA:
        img, types, chunks = cv2.imdecodeWithMetadata(data, cv2.IMREAD_UNCHANGED)
    elif data.size:
        img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if img is None or img.size == 0:
        raise InputError(f"cannot read {src}: not an image")
    if img.dtype not in (np.uint8, np.uint16) or (img.ndim == 3 and img.shape[2] not in (3, 4)):
        raise InputError(f"cannot colorize {src}: {img.dtype} samples with {img.shape[2:] or 1} channel(s)")
    if out.suffix.lower() not in IMAGE_SUFFIXES:
        raise OutputError(f"unknown image format for '{out.name}': use one of {', '.join(sorted(IMAGE_SUFFIXES))}")
    ext = _ENCODE_AS[out.suffix.lower()]
    result = colorize_photo(img, colorizer, hints, warn)
    if result.dtype == np.uint16 and ext not in _DEEP:
        warn(f"{src.name}: 16-bit photo written as 8-bit ({out.suffix.lower()} holds 8 bits; .png and .tiff hold 16)")
        result = (result.astype(np.float32) / 257.0 + 0.5).astype(np.uint8)
    if result.shape[2] == 4 and ext not in _ALPHA:
        warn(f"{src.name}: transparency dropped ({out.suffix.lower()} has no alpha channel; .png keeps it)")
        result = np.ascontiguousarray(result[..., :3])
    kinds = {int(t): c for t, c in zip(np.ravel(types), chunks)}
    if cv2.IMAGE_METADATA_ICCP in kinds:
        # the colorized pixels are sRGB: the input's profile (often a gray one) would misdescribe them
        if icc_dropped is None:
            warn(f"{src.name}: ICC profile not copied (the colorized output is sRGB)")
        else:
            icc_dropped.append(src)
        del kinds[cv2.IMAGE_METADATA_ICCP]
    if kinds and ext not in _METADATA:
        warn(f"{src.name}: EXIF/XMP metadata not copied ({out.suffix.lower()} output; .png, .jpg and .webp keep it)")
        kinds = {}
    if kinds:
        ok, buf = cv2.imencodeWithMetadata(ext, result, list(kinds), list(kinds.values()))
    else:
        ok, buf = cv2.imencode(ext, result)
    if not ok:
        raise OutputError(f"cannot encode {out.name}")
    write_atomically(out, buf.tobytes())


def write_atomically(out: Path, data: bytes) -> None:
    """Write through NAME.partial.EXT and rename: OUT is whole or absent, never half-written."""
    tmp = out.with_name(f"{out.stem}.partial{out.suffix}")
    try:
        tmp.write_bytes(data)
        tmp.replace(out)
    except OSError as e:
        raise OutputError(f"cannot write {out}: {e.strerror or e}") from None
    finally:
        tmp.unlink(missing_ok=True)


def image_targets(src: Path, out: str | Path, overwrite: bool = False) -> tuple[list[tuple[Path, Path]], bool]:
    """(input, output) pairs with cp's rules, checked before any work; and whether the output
    folder must be created. A file into an existing folder (or OUT ending in '/') keeps its
    name; a folder goes into a folder (created when missing), never into an image file name."""
    into_folder = str(out).endswith(("/", os.sep))
    out = Path(out)
    if not src.exists():
        raise InputError(f"input not found: {src}")
    if src.is_file():
        if out.is_dir():
            out = out / src.name
        elif into_folder:
            raise OutputError(f"output folder does not exist: {out}")
        check_output_path(out, [src], overwrite)
        if out.suffix.lower() not in IMAGE_SUFFIXES:
            raise OutputError(f"unknown image format for '{out.name}': use one of {', '.join(sorted(IMAGE_SUFFIXES))}")
        return [(src, out)], False
    files = sorted(p for p in src.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise InputError(f"no images in {src} (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
    if out.exists() and not out.is_dir():
        raise OutputError(f"input is a folder, so the output must be a folder: {out}")
    if not out.exists() and out.suffix.lower() in IMAGE_SUFFIXES:
        raise OutputError(f"input is a folder, so the output must be a folder, not an image name: {out}")
    if out.resolve() == src.resolve():
        raise OutputError(f"output folder is the input folder: {out}")
    if not out.parent.is_dir():
        raise OutputError(f"output folder's parent is not a folder: {out.parent}")
    create = not out.exists()
    check_writable(out if out.exists() else out.parent)
    pairs = [(f, out / f.name) for f in files]
    if not overwrite:
        existing = [o for _, o in pairs if o.exists()]
        if existing:
            more = f" and {len(existing) - 1} more" if len(existing) > 1 else ""
            raise OutputError(f"output exists: {existing[0]}{more} (give --overwrite or -y to replace)")
    return pairs, create


def colorize_image_url(
    url: str, out: str | Path, cfg: ColorizeConfig, warn: Callable[[str], None] = print, overwrite: bool = False
) -> Path:
    """A photo at an http(s):// (or ftp://, file://) URL -> OUT, a file or a folder (the URL's
    file name inside it). Fetched whole with the standard library, 30 s at most."""
    name = PurePosixPath(urllib.parse.urlparse(url).path).name
    out = Path(out)
    if out.is_dir() or str(out).endswith(("/", os.sep)):
        if not name:
            raise OutputError(f"{url} names no file: give an output file name")
        out = out / name
    check_output_path(out, [], overwrite)
    if out.suffix.lower() not in IMAGE_SUFFIXES:
        raise OutputError(f"unknown image format for '{out.name}': use one of {', '.join(sorted(IMAGE_SUFFIXES))}")
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            data = response.read()
    except ValueError as e:  # an unknown URL form
        raise InputError(f"cannot read {url}: {e}") from None
    except urllib.error.HTTPError as e:
        raise InputError(f"cannot read {url}: HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", None) or getattr(e, "strerror", None) or e
        raise InputError(f"cannot read {url}: {reason}") from None
    colorize_image_file(Path(name or "photo"), out, make_colorizer(cfg), warn, cfg.hints, data=data)
    return out


def colorize_images(
    src: str | Path,
    out: str | Path,
    cfg: ColorizeConfig | None = None,
    warn: Callable[[str], None] = print,
    overwrite: bool = False,
) -> list[Path]:
    """IN a file -> OUT a file (or into OUT when it is a folder); IN a folder -> OUT a folder
    (created), same file names. Every output is checked before the first is written; a write
    failure stops the run with what was written complete and nothing half-written."""
    cfg = cfg or ColorizeConfig()
    if "://" in str(src):  # never through Path: it folds 'http://' into 'http:/'
        return [colorize_image_url(str(src), out, cfg, warn, overwrite)]
    pairs, create = image_targets(Path(src), out, overwrite)
    colorizer = make_colorizer(cfg)
    folder = Path(out)
    if create:
        try:
            folder.mkdir()
        except OSError as e:
            raise OutputError(f"cannot create {folder}: {e.strerror or e}") from None
    written = []
    icc_dropped: list[Path] = []
    try:
        for f, target in pairs:
            try:
                colorize_image_file(f, target, colorizer, warn, cfg.hints, icc_dropped)
                written.append(target)
            except InputError as e:
                if len(pairs) == 1:
                    raise
                warn(f"skipped: {e}")
    finally:
        if create and not written:  # a folder we made and left empty is not an output
            with contextlib.suppress(OSError):
                folder.rmdir()
        if icc_dropped:  # once per run, not once per photo (issue 23: 7 lines for 20 photos)
            which = (
                f"{icc_dropped[0].name}: ICC profile"
                if len(icc_dropped) == 1
                else f"{len(icc_dropped)} photos: ICC profiles"
            )
            warn(f"{which} not copied (the colorized output is sRGB)")
    return written
