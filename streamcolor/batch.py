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

Here: the run itself (the lock, the plan, --split-shots, the summary). Which files, and
their outputs: batch_inputs.py; the local worker processes: batch_workers.py; one job and
the batch's settings: batch_jobs.py; Ray tasks instead of local workers: batch_ray.py.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from streamcolor.api import ColorizeConfig
from streamcolor.batch_inputs import estimate_frames, plan_jobs
from streamcolor.batch_jobs import LOCK_NAME, RECORD_NAME, BatchConfig, BatchProgress, Job, JobResult, colorizer_for
from streamcolor.batch_workers import _run_local, _Split, _Tracker
from streamcolor.errors import OutputError, StreamcolorError
from streamcolor.output_plan import partial_path
from streamcolor.shots import chunk_folder, piece_path, plan_shots


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

    from streamcolor.probe import nvidia_driver_present

    if backend in ("torch", "tensorrt"):
        return True
    return backend == "auto" and nvidia_driver_present() and importlib.util.find_spec("torch") is not None


# ---------------------------------------------------------------- discovery


# ---------------------------------------------------------------- local worker processes

_events = None  # the driver's queue, in a worker process
_busy = False  # a job is running: Ctrl-C interrupts it; an idle worker ignores Ctrl-C
_interrupted = False  # this job was interrupted already


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
