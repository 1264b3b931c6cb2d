"""`streamcolor batch --ray`: each file a Ray task on a cluster (imported only with --ray).

Every node reads the inputs and writes the outputs at the same paths, so they must be on
storage all nodes mount (NFS, a parallel file system); the driver keeps the record and the
progress. Tasks that die with their worker or node (out of memory, node lost) are retried
once by Ray (`max_retries=1`) and then reported as failed; a Python error inside a task is
not retried (the job already turned it into a failed result). Ctrl-C cancels the tasks:
running ones get a KeyboardInterrupt, so their sinks delete the partial files.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

try:
    import ray
    import ray.exceptions
except ImportError:  # pragma: no cover - depends on the installed extras
    ray = None

from streamcolor.api import ColorizeConfig
from streamcolor.batch_jobs import BatchConfig, Job, JobResult, run_job
from streamcolor.errors import NotAvailableError

GPU_BACKENDS = ("torch", "tensorrt")


def _colorize_task(job: Job, cfg: ColorizeConfig) -> JobResult:
    return run_job(job, cfg)


def connect(address: str) -> None:
    """Join the cluster at address ('auto': the one `ray start` made on this machine; 'local':
    a private Ray on this machine only). A Ray already initialised in this process is used."""
    if ray is None:
        raise NotAvailableError("--ray needs Ray: pip install 'streamcolor[cluster]'")
    if ray.is_initialized():
        return
    try:
        if address == "local":
            ray.init(include_dashboard=False, logging_level="ERROR", log_to_driver=False)
        else:
            ray.init(address=address, logging_level="ERROR", log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise NotAvailableError(
            f"cannot reach a Ray cluster at '{address}' ({first}); start one with `ray start --head`"
        ) from None


def _wants_gpu(cfg: BatchConfig) -> bool:
    backend = cfg.colorize.backend
    return backend in GPU_BACKENDS or (backend == "auto" and ray.cluster_resources().get("GPU", 0) > 0)


def task_slots(cfg: BatchConfig) -> int:
    """How many tasks the cluster runs at once (what --split-shots cuts a film for)."""
    resources = ray.cluster_resources()
    if _wants_gpu(cfg):
        return max(1, int(resources.get("GPU", 1)))
    return max(1, int(resources.get("CPU", 1)) // (cfg.colorize.threads or 1))


def run_on_ray(todo: list[Job], cfg: BatchConfig, finish: Callable[[int, JobResult], None]) -> None:
    """Each job of todo a Ray task; finish(index in todo, result) is called on this process as
    each one ends (the driver's record and progress)."""
    connect(cfg.ray)
    colorize = cfg.colorize
    gpu = _wants_gpu(cfg)
    cpus = colorize.threads or 1  # a CPU task runs inference on the CPUs it asked for
    if colorize.threads is None:
        colorize = dataclasses.replace(colorize, threads=cpus)
    task = ray.remote(_colorize_task).options(
        num_cpus=cpus, num_gpus=1 if gpu else 0, max_retries=1, retry_exceptions=False
    )
    # Longest first: the cluster then ends evenly.
    refs = {task.remote(todo[i], colorize): i for i in sorted(range(len(todo)), key=lambda i: -todo[i].frames)}
    pending = list(refs)
    try:
        while pending:
            ready, pending = ray.wait(pending, num_returns=1, timeout=1.0)
            for ref in ready:
                i = refs[ref]
                try:
                    result = ray.get(ref)
                except ray.exceptions.RayTaskError as e:  # a bug in the task: its own one line
                    result = _failed(todo[i], f"internal error: {e.cause!r}" if e.cause else str(e).splitlines()[0])
                except ray.exceptions.RayError as e:  # the worker or node died, after one retry
                    reason = f"the Ray task died twice ({type(e).__name__}: out of memory? node lost?)"
                    result = _failed(todo[i], reason)
                finish(i, result)
    except KeyboardInterrupt:
        for ref in pending:
            ray.cancel(ref)  # not force: a running task gets KeyboardInterrupt and cleans up
        ready, _ = ray.wait(pending, num_returns=len(pending), timeout=10.0)
        for ref in ready:  # those that finished before the cancel reached them
            try:
                finish(refs[ref], ray.get(ref))
            except ray.exceptions.RayError:
                pass
        raise


def _failed(job: Job, reason: str) -> JobResult:
    return JobResult(str(job.src), str(job.out), "failed", error=reason)
