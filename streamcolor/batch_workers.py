"""A batch's local worker processes: started, fed one job at a time, watched, stopped on Ctrl-C."""

from __future__ import annotations

import concurrent.futures as cf
import ctypes
import dataclasses
import datetime
import json
import multiprocessing
import os
import queue
import shutil
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import av

from streamcolor.api import ColorizeConfig
from streamcolor.batch_jobs import BatchConfig, BatchProgress, Job, JobResult, run_job
from streamcolor.errors import StreamcolorError
from streamcolor.shots import ShotPlan, join_pieces, piece_path


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
