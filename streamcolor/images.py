"""Photos: one decoded picture, a photo file, a photo at a URL, a folder of photos; each output
keeps its input's layout, depth, alpha and metadata where its format holds them."""

from __future__ import annotations

import contextlib
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path, PurePosixPath

import cv2
import numpy as np

from streamcolor import color
from streamcolor.api import ColorizeConfig, make_colorizer
from streamcolor.colorizer import Colorizer
from streamcolor.errors import InputError, OutputError
from streamcolor.hints.file import HintFile
from streamcolor.output_plan import check_output_path, check_writable

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
            raise OutputError(
                f"output exists: {existing[0]}{more} (give --overwrite or -y to replace {'them' if more else 'it'})"
            )
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
