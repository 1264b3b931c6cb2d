"""`streamcolor batch`: many files into one output folder, resumable, in parallel.

What makes it safe to stop and rerun at any moment:
- every output is written through the sinks' partial file and renamed when complete
  (sink.py), so a file at its final name is a finished one, whatever killed the batch;
- a rerun skips outputs that exist and deletes the partial files of the jobs it runs
  (a `kill -9` leaves them behind); it holds a lock on OUTDIR meanwhile, so it never
  deletes a partial file that another batch is still writing;
- local workers die with the batch (Linux: PR_SET_PDEATHSIG), so no orphan goes on
  writing a partial file after a `kill -9` of the batch.

Each job runs in a worker process with its own engine (built once per process); a job's
failure is recorded and the batch goes on. The driver alone appends to the record
(`streamcolor-batch.jsonl` in OUTDIR), one line per finished job.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import ctypes
import dataclasses
import datetime
import glob
import json
import multiprocessing
import os
import queue
import shutil
import signal
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import av

from streamcolor.api import IMAGE_SUFFIXES, ColorizeConfig
from streamcolor.batch_jobs import BatchConfig, Job, JobResult, colorizer_for, run_job
from streamcolor.errors import InputError, OutputError, StreamcolorError
from streamcolor.sequence import FRAME_CODECS, find_frames, frames_from_pattern, frames_in_folder, is_pattern
from streamcolor.shots import ShotPlan, chunk_folder, join_pieces, piece_path, plan_shots
from streamcolor.sink import partial_path

# Containers FFmpeg reads that hold film and video (a folder scan takes these; a file named
# on the command line is tried whatever its extension).
VIDEO_SUFFIXES = {
    ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".m2v", ".ts", ".mts", ".m2ts",
    ".vob", ".mxf", ".dv", ".flv", ".wmv", ".asf", ".ogv", ".3gp", ".y4m", ".nut",
}  # fmt: skip
LIST_SUFFIXES = {".txt", ".lst", ".list"}
RECORD_NAME = "streamcolor-batch.jsonl"
LOCK_NAME = ".streamcolor-batch.lock"


@dataclass
class BatchProgress:
    files_done: int  # finished (done or failed) of those to run
    files_total: int
    frames_done: int  # finished files plus the frames of those under way
    frames_total: int  # estimate
    elapsed: float


@dataclass
class BatchSummary:
    results: list[JobResult]
    seconds: float
    interrupted: bool = False
    not_run: int = 0  # jobs cancelled by an interruption

    def _with(self, status: str) -> list[JobResult]:
        return [r for r in self.results if r.status == status]

    @property
    def done(self) -> list[JobResult]:
        return self._with("done")

    @property
    def skipped(self) -> list[JobResult]:
        return self._with("skipped")

    @property
    def failed(self) -> list[JobResult]:
        return self._with("failed")

    @property
    def frames(self) -> int:
        return sum(r.frames for r in self.done)


class BatchInterrupted(StreamcolorError):
    """Ctrl-C during a batch; carries the summary of what finished before it."""

    exit_code = 130

    def __init__(self, summary: BatchSummary):
        super().__init__("interrupted")
        self.summary = summary


def default_workers(cfg: ColorizeConfig, gpus: tuple[str, ...] = ()) -> int:
    """Local worker processes when --workers is not given.

    GPU ids given: one worker each. A GPU backend without them: one (processes sharing a GPU
    have not been measured). On the CPU: one process per core, up to 8, each running inference
    on its share of the cores. Measured on 2 cores (benchmarks/batch_speed.py): two processes
    with one inference thread each beat one with two, since one file's stages (decode,
    inference, chroma, encode) do not keep 2 cores busy all the time and a second file fills
    the gaps. The cap of 8 bounds memory (a worker at 1080p holds about 0.6 GB,
    benchmarks/memory.py); above 2 cores it is reasoned, not measured."""
    if gpus:
        return len(gpus)
    if _gpu_backend(cfg.backend):
        return 1
    return max(1, min(os.cpu_count() or 1, 8))


def _gpu_backend(backend: str) -> bool:
    """Whether the engine will run on an NVIDIA GPU, decided without importing PyTorch."""
    import importlib.util

    from streamcolor.source import nvidia_driver_present

    if backend in ("torch", "tensorrt"):
        return True
    return backend == "auto" and nvidia_driver_present() and importlib.util.find_spec("torch") is not None


# ---------------------------------------------------------------- discovery


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


# ---------------------------------------------------------------- local worker processes

_events = None  # the driver's queue, in a worker process
_busy = False  # a job is running: Ctrl-C interrupts it; an idle worker ignores Ctrl-C
_interrupted = False  # this job was interrupted already


def _on_sigint(signum, frame) -> None:
    """A terminal's Ctrl-C reaches every process of the group, and the driver passes it on to
    the workers too (for a SIGINT sent to the driver alone): the first one interrupts the job,
    a second must not interrupt the sink while it deletes its partial file."""
    global _interrupted
    if _busy and not _interrupted:
        _interrupted = True
        raise KeyboardInterrupt


def _die_with_parent(parent: int) -> None:
    """Linux: SIGKILL this worker when the batch process dies (kill -9 included), so no orphan
    goes on writing a partial file that a rerun is about to delete or start again."""
    if sys.platform.startswith("linux"):
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def _init_worker(events, gpu_ids, parent: int) -> None:
    global _events
    _die_with_parent(parent)
    signal.signal(signal.SIGINT, _on_sigint)
    _events = events
    if gpu_ids is not None:
        # one id per worker; set before any CUDA library is loaded in this process. A blocking
        # get: the parent's puts reach the pipe through a feeder thread, so a worker that
        # started first could find the queue still empty (seen once in CI: a file ran with no
        # GPU id). A replacement worker after all ids are taken waits 5 s and takes none.
        try:
            os.environ["CUDA_VISIBLE_DEVICES"] = gpu_ids.get(timeout=5.0)
        except queue.Empty:
            pass


def _worker_job(index: int, job: Job, cfg: ColorizeConfig) -> JobResult:
    global _busy, _interrupted
    _interrupted = False
    _events.put(("start", index, os.getpid()))
    last = [0.0]

    def frames(n: int) -> None:
        now = time.monotonic()
        if now - last[0] >= 0.5:
            last[0] = now
            _events.put(("frames", index, n))

    _busy = True
    try:
        return run_job(job, cfg, frames)
    finally:
        _busy = False


@dataclass
class _Split:
    """A file cut into pieces: its pieces' jobs, and what the join needs."""

    file: int  # index in the tracker's files
    plan: ShotPlan
    folder: Path
    waiting: set[int]  # job indexes not finished yet
    seconds: float = 0.0
    failure: JobResult | None = None
    warnings: list[str] = field(default_factory=list)


class _Tracker:
    """The driver's view: jobs finished, files finished (a split file when its pieces are
    joined), the record, progress."""

    def __init__(
        self,
        files: list[Job],
        jobs: list[Job],
        file_of: dict[int, int],
        splits: dict[int, _Split],
        record: Path,
        on_result: Callable[[JobResult], None] | None,
        on_progress: Callable[[BatchProgress], None] | None,
    ):
        self.files = files
        self.todo = jobs
        self.splits = splits  # job index -> its file's split (several jobs share one)
        self.record = record
        self.on_result = on_result
        self.on_progress = on_progress
        self.results: dict[int, JobResult] = {}  # file index -> result
        self.done_jobs: set[int] = set()
        self.job_frames = 0
        self.under_way: dict[int, int] = {}  # job index -> frames so far
        self.start = time.perf_counter()
        self.frames_total = sum(j.frames for j in jobs)
        self.file_of = file_of  # job index -> file index, for files colorized in one piece

    def finish(self, index: int, result: JobResult) -> None:
        self.done_jobs.add(index)
        self.under_way.pop(index, None)
        self.job_frames += result.frames
        split = self.splits.get(index)
        if split is None:
            self._file_done(self.file_of[index], result)
            return
        split.waiting.discard(index)
        split.seconds += result.seconds
        split.warnings += result.warnings
        if result.status == "failed" and split.failure is None:
            split.failure = result
        if not split.waiting:
            self.join(split)
        else:
            self.progress()

    def join(self, split: _Split) -> None:
        """All pieces in: join them into the file's output (or record the first failure)."""
        job = self.files[split.file]
        if split.failure is not None:
            reason = f"{Path(split.failure.output).stem}: {split.failure.error}"
            result = JobResult(str(job.src), str(job.out), "failed", error=reason, host=split.failure.host)
        else:
            t = time.perf_counter()
            try:
                frames = join_pieces(
                    job.src, [piece_path(split.folder, p) for p in split.plan.pieces], job.out, split.plan
                )
            except (StreamcolorError, OSError, av.FFmpegError) as e:
                result = JobResult(str(job.src), str(job.out), "failed", error=f"joining the pieces: {e}")
            else:
                seconds = split.seconds + time.perf_counter() - t
                result = JobResult(
                    str(job.src), str(job.out), "done", frames, round(seconds, 3), round(frames / seconds, 2),
                    backend=f"{len(split.plan.pieces)} pieces", warnings=split.warnings,
                )  # fmt: skip
                shutil.rmtree(split.folder, ignore_errors=True)
                try:
                    split.folder.parent.rmdir()  # the chunks' folder, once no other file's pieces wait there
                except OSError:
                    pass
        self._file_done(split.file, result)

    def _file_done(self, file: int, result: JobResult) -> None:
        self.results[file] = result
        line = dict(time=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"))
        line.update(dataclasses.asdict(result))
        # One writer (this process), one line per file, flushed to disk before the next: a
        # kill -9 loses at most the line being written.
        with open(self.record, "a", encoding="utf-8") as f:
            f.write(json.dumps(line) + "\n")
            f.flush()
            os.fsync(f.fileno())
        if self.on_result:
            self.on_result(result)
        self.progress()

    def frames(self, index: int, n: int) -> None:
        if index not in self.done_jobs:
            self.under_way[index] = n
            self.progress()

    def progress(self) -> None:
        if self.on_progress:
            done = self.job_frames + sum(self.under_way.values())
            self.on_progress(
                BatchProgress(
                    len(self.results),
                    len(self.files),
                    done,
                    max(self.frames_total, done),
                    time.perf_counter() - self.start,
                )
            )


def _run_local(todo: list[Job], cfg: BatchConfig, workers: int, tracker: _Tracker) -> None:
    """Jobs on a process pool, longest first (the pool then ends evenly). A worker that dies
    (segfault, out of memory) breaks the pool: the job(s) it was running are retried once in a
    fresh pool, then recorded as failed; the jobs that had not started run as planned."""
    ctx = multiprocessing.get_context("spawn")  # no fork of a process with threads and engines
    colorize = cfg.colorize
    if colorize.threads is None:  # the cores shared between the workers
        colorize = dataclasses.replace(colorize, threads=max(1, (os.cpu_count() or 1) // workers))
    order = sorted(range(len(todo)), key=lambda i: -todo[i].frames)
    attempts: dict[int, int] = {}
    while order:
        events = ctx.Queue()
        gpu_ids = None
        if cfg.gpus:
            gpu_ids = ctx.Queue()
            for i in range(workers):
                gpu_ids.put(cfg.gpus[i % len(cfg.gpus)])
        pool = cf.ProcessPoolExecutor(
            workers, mp_context=ctx, initializer=_init_worker, initargs=(events, gpu_ids, os.getpid())
        )
        running: dict[int, int] = {}  # job index -> worker pid
        futures = {pool.submit(_worker_job, i, todo[i], colorize): i for i in order}
        order = []
        broken = False
        try:
            pending = set(futures)
            while pending:
                finished, pending = cf.wait(pending, timeout=0.2, return_when=cf.FIRST_COMPLETED)
                _drain(events, running, tracker)
                for fut in finished:
                    i = futures[fut]
                    try:
                        tracker.finish(i, fut.result())
                    except cf.process.BrokenProcessPool:
                        broken = True
                    running.pop(i, None)
                if broken:
                    break
        except KeyboardInterrupt:
            _drain(events, running, tracker)
            for pid in running.values():  # workers already got it from a terminal's Ctrl-C: harmless
                try:
                    os.kill(pid, signal.SIGINT)
                except ProcessLookupError:
                    pass
            pool.shutdown(wait=True, cancel_futures=True)
            for fut, i in futures.items():  # those that finished while shutting down
                if i not in tracker.done_jobs and fut.done() and not fut.cancelled() and fut.exception() is None:
                    tracker.finish(i, fut.result())
            raise
        if not broken:
            pool.shutdown(wait=True)
            return
        _drain(events, running, tracker)
        pool.shutdown(wait=False, cancel_futures=True)
        for fut, i in futures.items():
            if i in tracker.done_jobs:
                continue
            if fut.done() and not fut.cancelled() and fut.exception() is None:
                tracker.finish(i, fut.result())
            elif i in running or i in tracker.under_way:
                attempts[i] = attempts.get(i, 0) + 1
                if attempts[i] > 1:
                    job = todo[i]
                    reason = "the worker process died while colorizing it, twice (out of memory? a crash?)"
                    tracker.finish(i, JobResult(str(job.src), str(job.out), "failed", error=reason))
                else:
                    order.append(i)
            else:
                order.append(i)


def _drain(events, running: dict[int, int], tracker: _Tracker) -> None:
    while True:
        try:
            what, index, value = events.get_nowait()
        except queue.Empty:
            return
        if what == "start":
            running[index] = value
            tracker.frames(index, 0)
        elif what == "frames":
            tracker.frames(index, value)


# ---------------------------------------------------------------- the batch


class _OutdirLock:
    """An exclusive lock on OUTDIR for the batch's life (released by the OS if it is killed)."""

    def __init__(self, outdir: Path):
        self.path = outdir / LOCK_NAME
        self.fd: int | None = None

    def __enter__(self) -> _OutdirLock:
        try:
            import fcntl
        except ImportError:  # Windows: no advisory locks here; one batch per folder is then up to the user
            return self
        while True:
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(self.fd)
                self.fd = None
                raise OutputError(f"another streamcolor batch is writing to {self.path.parent}; wait for it") from None
            # The batch before us deletes the file as it ends (issue 23: no lock file left in
            # OUTDIR): a lock taken on a file it has just deleted is no lock; take the new one.
            try:
                if os.stat(self.path).st_ino == os.fstat(self.fd).st_ino:
                    return self
            except FileNotFoundError:
                pass
            os.close(self.fd)

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            # deleted while still held, so no other batch can hold it at the same time
            # (a kill -9 leaves the empty file: harmless, and the next batch deletes it)
            with contextlib.suppress(OSError):
                os.unlink(self.path)
            os.close(self.fd)
            self.fd = None


def run_batch(
    inputs: Iterable[str],
    outdir: str | Path,
    cfg: BatchConfig | None = None,
    on_result: Callable[[JobResult], None] | None = None,
    on_progress: Callable[[BatchProgress], None] | None = None,
    on_plan: Callable[[int, int], None] | None = None,
) -> BatchSummary:
    """Colorize every input into OUTDIR (created); finished outputs are skipped unless
    cfg.overwrite. on_plan(to_run, skipped) is called once the work is known. Raises
    BatchInterrupted (with the summary so far) on Ctrl-C; failed jobs are in the summary.

    Local workers are started with multiprocessing's spawn method, so a script that calls
    this needs the usual `if __name__ == "__main__":` guard."""
    cfg = cfg or BatchConfig()
    outdir = Path(outdir)
    if outdir.exists() and not outdir.is_dir():
        raise OutputError(f"output must be a folder: {outdir}")
    if not outdir.parent.is_dir():
        raise OutputError(f"output folder's parent does not exist: {outdir.parent}")
    jobs = plan_jobs(inputs, outdir, cfg)
    outdir.mkdir(exist_ok=True)
    start = time.perf_counter()
    with _OutdirLock(outdir):
        skipped: list[JobResult] = []
        todo: list[Job] = []
        for job in jobs:
            # A partial file is never a finished output; whoever wrote it is gone (we hold the lock).
            partial_path(job.out).unlink(missing_ok=True)
            if job.out.exists() and not cfg.overwrite:
                skipped.append(JobResult(str(job.src), str(job.out), "skipped"))
            else:
                todo.append(dataclasses.replace(job, frames=estimate_frames(job)))
        if on_plan:
            on_plan(len(todo), len(skipped))
        interrupted = False
        tracker = None
        try:
            workers = cfg.workers or default_workers(cfg.colorize, cfg.gpus)  # capped at the jobs below
            if cfg.ray and todo:
                from streamcolor.batch_ray import connect, task_slots

                connect(cfg.ray)
                workers = task_slots(cfg)
            if cfg.split_shots:
                jobs, file_of, by_job, splits = _split_shots(todo, cfg, outdir, workers)
            else:
                jobs, file_of, by_job, splits = todo, {i: i for i in range(len(todo))}, {}, []
            tracker = _Tracker(todo, jobs, file_of, by_job, outdir / RECORD_NAME, on_result, on_progress)
            for split in splits:
                if not split.waiting:  # every piece was finished by an earlier, interrupted run
                    tracker.join(split)
            tracker.progress()
            if not jobs:
                pass
            elif cfg.ray:
                from streamcolor.batch_ray import run_on_ray

                run_on_ray(jobs, cfg, tracker.finish)
            else:
                _run_local(jobs, cfg, min(workers, len(jobs)), tracker)
        except KeyboardInterrupt:
            interrupted = True
    finished = tracker.results if tracker else {}
    results = skipped + [finished[i] for i in sorted(finished)]
    summary = BatchSummary(results, time.perf_counter() - start, interrupted, len(todo) - len(finished))
    if interrupted:
        raise BatchInterrupted(summary)
    return summary


def _split_shots(
    todo: list[Job], cfg: BatchConfig, outdir: Path, workers: int
) -> tuple[list[Job], dict[int, int], dict[int, _Split], list[_Split]]:
    """Each video cut at its scene cuts into pieces (jobs of their own); a video that cannot be
    split safely, or has a single shot, stays one job. Pieces finished by an earlier run (their
    files exist: written through partial files too) are not run again.
    -> (jobs, job -> file for unsplit files, job -> split, every split)."""
    colorizer = colorizer_for(cfg.colorize)  # the cut test needs the network's grid only
    jobs: list[Job] = []
    file_of: dict[int, int] = {}
    by_job: dict[int, _Split] = {}
    splits: list[_Split] = []
    for f, job in enumerate(todo):
        plan = None
        if job.kind == "video":
            try:
                plan = plan_shots(job.src, job.out, colorizer, workers, cfg.colorize.encode)
            except StreamcolorError:  # refused, damaged, no timestamps: the whole-file job says why
                plan = None
        if plan is None or len(plan.pieces) < 2:
            file_of[len(jobs)] = f
            jobs.append(job)
            continue
        folder = chunk_folder(outdir, job.src, job.out, cfg.colorize)
        folder.mkdir(parents=True, exist_ok=True)
        split = _Split(f, plan, folder, set())
        splits.append(split)
        for piece in plan.pieces:
            out = piece_path(folder, piece)
            partial_path(out).unlink(missing_ok=True)
            if out.exists():
                continue
            by_job[len(jobs)] = split
            split.waiting.add(len(jobs))
            jobs.append(Job(job.src, out, "piece", piece.end - piece.first, piece))
    return jobs, file_of, by_job, splits
