"""Which files a batch colorizes: its inputs (files, folders, globs, lists) found, their
outputs planned, their frames estimated."""

from __future__ import annotations

import glob
from collections.abc import Iterable
from pathlib import Path

import av

from streamcolor.batch_jobs import LOCK_NAME, RECORD_NAME, BatchConfig, Job
from streamcolor.errors import InputError, StreamcolorError
from streamcolor.images import IMAGE_SUFFIXES
from streamcolor.sequence import FRAME_CODECS, find_frames, frames_from_pattern, frames_in_folder, is_pattern

# Containers FFmpeg reads that hold film and video (a folder scan takes these; a file named
# on the command line is tried whatever its extension).
VIDEO_SUFFIXES = {
    ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".m2v", ".ts", ".mts", ".m2ts",
    ".vob", ".mxf", ".dv", ".flv", ".wmv", ".asf", ".ogv", ".3gp", ".y4m", ".nut",
}  # fmt: skip


LIST_SUFFIXES = {".txt", ".lst", ".list"}


def _has_magic(text: str) -> bool:
    return any(c in text for c in "*?[")


def _glob_base(pattern: str) -> Path:
    """The folder a glob pattern starts from: its leading parts without wildcards."""
    parts = Path(pattern).parts
    base = []
    for p in parts:
        if _has_magic(p):
            break
        base.append(p)
    return Path(*base) if base else Path(".")


def _wanted(path: Path, kind: str, explicit: bool) -> str | None:
    """'video', 'image' or None (not taken) for a file found or named."""
    ext = path.suffix.lower()
    if ext in IMAGE_SUFFIXES:
        return "image" if kind in ("auto", "image") else None
    if kind == "image":
        return None
    if explicit or ext in VIDEO_SUFFIXES:
        return "video"
    return None


def _is_ours(path: Path) -> bool:
    """Files the batch itself writes: partial outputs, the record, the lock."""
    return ".partial." in path.name or path.name in (RECORD_NAME, LOCK_NAME)


def _under(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder)
    except ValueError:
        return False
    return True


def _safe_relative(text: str) -> Path | None:
    """A path as written, when it is relative and stays inside its folder; else None."""
    p = Path(text)
    return p if not p.is_absolute() and ".." not in p.parts else None


def _is_sequence(folder: Path) -> bool:
    """Whether folder holds an image sequence and nothing else of ours to colorize: every
    DPX/TIFF/PNG file in it numbered alike (at least two), and no video (sequence.py)."""
    frames = frames_in_folder(folder)
    if frames is None or len(frames.numbers) < 2:
        return False
    others = [
        p
        for p in folder.iterdir()
        if p.is_file()
        and not p.name.startswith(".")
        and (p.suffix.lower() in FRAME_CODECS or _wanted(p, "auto", False))
    ]
    return len(others) == len(frames.numbers)


def discover(inputs: Iterable[str], outdir: Path, kind: str = "auto") -> list[tuple[Path, Path, str]]:
    """Inputs -> (source, relative output path before the extension change, kind).

    A file named: taken whatever its extension (tried as a video unless it is a photo),
    output at OUTDIR/NAME. A folder: every video (and photo) inside, recursively, mirrored
    under OUTDIR. A glob (quote it against the shell: 'reels/**/*.mov'): its matches, mirrored
    from the folder where the pattern's wildcards start. A list file (@PATH, or a .txt/.lst
    file): one input per line, relative to the list's folder; '#' starts a comment, and the
    outputs mirror the paths as written. OUTDIR is never scanned."""
    out_root = outdir.resolve()
    found: list[tuple[Path, Path, str]] = []

    def add_folder(folder: Path, prefix: Path) -> None:
        sequences = set()
        if kind != "image":  # a folder of numbered frames is one film (photos only with --image)
            for d in [folder, *sorted(p for p in folder.rglob("*") if p.is_dir())]:
                if not _under(d, out_root) and _is_sequence(d):
                    sequences.add(d)
                    found.append((d, prefix / (d.relative_to(folder) if d != folder else Path(folder.name)), "video"))
        for p in sorted(folder.rglob("*")):
            if p.parent in sequences:
                continue
            if p.is_file() and not p.name.startswith(".") and not _is_ours(p) and not _under(p, out_root):
                what = _wanted(p, kind, explicit=False)
                if what:
                    found.append((p, prefix / p.relative_to(folder), what))

    def add(text: str, base: Path, mirror: bool) -> None:
        list_file = text.startswith("@")
        path = base / (text[1:] if list_file else text)
        if list_file or (path.is_file() and path.suffix.lower() in LIST_SUFFIXES):
            add_list(path)
        elif path.is_dir():
            add_folder(path, (_safe_relative(text) or Path()) if mirror else Path())
        elif path.is_file():
            what = _wanted(path, kind, explicit=True)
            if what is None:
                raise InputError(f"{path} is not a photo (--image takes {', '.join(sorted(IMAGE_SUFFIXES))})")
            rel = (_safe_relative(text) if mirror else None) or Path(path.name)
            found.append((path, rel, what))
        elif is_pattern(text):  # an image sequence's frame pattern (scan/%06d.dpx): one film
            frames = frames_from_pattern(path)
            rel = (_safe_relative(str(frames.folder)) if mirror else None) or Path(frames.folder.resolve().name)
            found.append((path, rel, "video"))
        elif _has_magic(text):
            matches = sorted(Path(m) for m in glob.glob(str(path), recursive=True))
            files = [m for m in matches if m.is_file() and not _is_ours(m) and not _under(m, out_root)]
            files = [m for m in files if _wanted(m, kind, explicit=False)]
            if not files:
                raise InputError(f"no videos or photos match {text}")
            start = _glob_base(str(path))
            for m in files:
                found.append((m, m.relative_to(start), _wanted(m, kind, explicit=False)))
        else:
            raise InputError(f"input not found: {path}")

    def add_list(path: Path) -> None:
        try:
            lines = path.read_text().splitlines()
        except (OSError, UnicodeDecodeError) as e:
            raise InputError(f"cannot read the list {path}: {getattr(e, 'strerror', None) or e}") from None
        for line in lines:
            line = line.split("#", 1)[0].strip()
            if line:
                add(line, path.parent, mirror=True)

    for text in inputs:
        add(text, Path(), mirror=False)
    return found


def plan_jobs(inputs: Iterable[str], outdir: Path, cfg: BatchConfig) -> list[Job]:
    """Discovered inputs -> jobs with their output paths; one input found twice is taken once,
    and two inputs that would write the same output are refused before any work."""
    jobs: list[Job] = []
    seen_src: set[Path] = set()
    by_out: dict[Path, Path] = {}
    for src, rel, what in discover(inputs, outdir, cfg.kind):
        key = src.resolve()
        if key in seen_src:
            continue
        seen_src.add(key)
        if src.is_dir() or is_pattern(src):  # an image sequence: its folder's name, the container's extension added
            out = outdir / rel.parent / f"{rel.name}.{cfg.container}"
        else:
            out = outdir / (rel if what == "image" else rel.with_suffix(f".{cfg.container}"))
        if out in by_out:
            raise InputError(f"{by_out[out]} and {src} would both write {out}: rename one, or run them apart")
        by_out[out] = src
        jobs.append(Job(src, out, what))
    if not jobs:
        raise InputError("no videos or photos found in the inputs")
    return jobs


def estimate_frames(job: Job) -> int:
    """The input's frame count from its header (0 when unknown or unreadable): for progress only."""
    if job.kind == "image":
        return 1
    try:
        if is_pattern(job.src) or job.src.is_dir():
            frames = find_frames(job.src)
            return len(frames.numbers) if frames else 0
        with av.open(str(job.src), metadata_errors="ignore") as c:
            v = c.streams.video[0]
            if v.frames:
                return int(v.frames)
            rate = v.average_rate or v.guessed_rate
            seconds = float(v.duration * v.time_base) if v.duration else (c.duration or 0) / 1e6
            return int(round(seconds * rate)) if rate else 0
    except (av.FFmpegError, IndexError, ValueError, TypeError, OSError):
        return 0
    except StreamcolorError:  # a pattern whose frames went away
        return 0
