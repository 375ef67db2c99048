"""Where long jobs run: this process, a local process pool, or Ray tasks on a laptop or cluster.

Each backend is a :class:`concurrent.futures.Executor`, so a caller submits the same module-level
functions to any of them and reads the same results. Ray is an optional extra
(``pip install 'vlgor[ray]'``); the local pool stays the default on one machine.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from typing import Any, Literal

import torch

Backend = Literal["local", "ray"]
BACKENDS: tuple[str, ...] = ("local", "ray")
#: Settings a Ray worker on another machine needs to find our data and render like this process.
FORWARDED_ENV = (
    "MINARI_DATASETS_PATH",
    "MUJOCO_GL",
    "PYOPENGL_PLATFORM",
    "HF_HUB_OFFLINE",
    "TRANSFORMERS_OFFLINE",
)


def set_threads(threads: int) -> None:
    """torch intra-op threads of this worker process."""
    torch.set_num_threads(threads)


def call_with_threads(threads: int, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` on ``threads`` torch threads: what one Ray task runs."""
    set_threads(threads)
    return fn(*args, **kwargs)


class InProcess(Executor):
    """Runs each call as it is submitted, in this process: the executor of one worker."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        future.set_result(fn(*args, **kwargs))
        return future


class RayExecutor(Executor):
    """Each call a Ray task that declares ``cpus`` CPUs (and ``gpus`` GPUs), run on as many torch
    threads, wherever the cluster has room; futures as a process pool gives them."""

    def __init__(self, cpus: int, gpus: float = 0.0) -> None:
        import ray

        self._remote = ray.remote(call_with_threads).options(num_cpus=cpus, num_gpus=gpus)
        self._cpus = cpus
        self._pending: list[Any] = []

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        ref = self._remote.remote(self._cpus, fn, *args, **kwargs)
        self._pending.append(ref)
        future: Future[Any] = Future()
        ref.future().add_done_callback(lambda done: _settle(future, done))
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        import ray

        if cancel_futures:
            for ref in self._pending:
                ray.cancel(ref)  # queued tasks are dropped; running ones are interrupted
        elif wait and self._pending:
            ray.wait(self._pending, num_returns=len(self._pending))
        self._pending = []


def _settle(future: Future[Any], done: Future[Any]) -> None:
    """Copy a finished Ray future into ``future``, a task's error as the error it raised (Ray
    wraps it in a multi-line ``RayTaskError``), so users get our one-line messages."""
    from ray.exceptions import RayTaskError

    if done.cancelled():
        future.cancel()
        return
    error = done.exception()
    if error is None:
        future.set_result(done.result())
    elif isinstance(error, RayTaskError) and isinstance(error.cause, Exception):
        future.set_exception(error.cause)
    else:
        future.set_exception(error)


def _ray_runtime_env() -> dict[str, Any]:
    """This process's data path and rendering settings, for workers on other machines."""
    return {"env_vars": {name: os.environ[name] for name in FORWARDED_ENV if name in os.environ}}


@contextlib.contextmanager
def ray_session(address: str | None, cpus: int | None) -> Iterator[None]:
    """A Ray session: the cluster at ``address``, or a local one of ``cpus`` CPUs started here."""
    try:
        import ray
    except ImportError:
        raise ValueError("the ray backend needs Ray: pip install 'vlgor[ray]'") from None
    if ray.is_initialized():  # the caller's own session (a notebook, a test)
        yield
        return
    if address is not None:
        ray.init(address=address, runtime_env=_ray_runtime_env())
    else:
        ray.init(num_cpus=cpus, include_dashboard=False, runtime_env=_ray_runtime_env())
    try:
        yield
    finally:
        ray.shutdown()


@contextlib.contextmanager
def worker_pool(
    workers: int,
    threads: int | None = None,
    backend: Backend = "local",
    address: str | None = None,
    gpus: float = 0.0,
) -> Iterator[Executor]:
    """An executor for long jobs.

    ``local``: ``workers`` spawned processes on ``threads`` torch threads each (default: the
    cores shared out), or this process alone for one worker. ``ray``: Ray tasks of ``threads``
    CPUs each (default 1) and ``gpus`` GPUs, on the cluster at ``address`` or on a local Ray of
    ``workers`` tasks side by side. On an error or Ctrl-C the queued jobs are dropped.
    """
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    pool: Executor
    if backend == "ray":
        cpus = threads or 1
        with ray_session(address, None if address else workers * cpus):
            pool = RayExecutor(cpus, gpus)
            yield from _shut_down_after(pool)
        return
    if workers == 1:
        yield InProcess()
        return
    threads = threads or max(1, (os.cpu_count() or 1) // workers)
    # Spawned, not forked: the parent may hold torch threads and open HDF5 files.
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(workers, context, initializer=set_threads, initargs=(threads,))
    yield from _shut_down_after(pool)


def _shut_down_after(pool: Executor) -> Iterator[Executor]:
    try:
        yield pool
    except BaseException:
        # Drop the queued jobs; the running ones finish (or are interrupted) and what they
        # wrote atomically is kept for a resume.
        pool.shutdown(cancel_futures=True)
        raise
    pool.shutdown()
