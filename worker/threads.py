"""How a worker shares the machine's cores between the model and everything around it.

torch, onnxruntime (the image check) and OpenCV each size their thread pools to every core, and the model call of
one job overlaps the image check and encoding of the one before it: on a CPU worker that is three pools of N
threads on N cores, spinning against each other, and the model ran 1.6× slower inside the worker than alone. So
the pools are sized here, once, by design:

- the model call runs in one device thread (worker.device.DeviceGuard) with `model` torch intra-op threads;
- post-processing (image check, watermark, PNG encoding, grid and preview, signing) runs on `post` threads of its
  own executor, each task single-threaded (onnxruntime intra-op 1, no spinning; OpenCV 1 thread);
- I/O (storage, Redis) stays on the event loop and the default executor, untouched.

On a CPU worker the model gets every core but the post-processing ones; on a GPU the CPU only feeds the device,
so the model needs few threads and post-processing gets the rest. WorkerSettings.model_threads / post_threads
override either number (0 = derived).

Post-processing is bursty: a job's checks and encodings take a fraction of its model time, and the post cores
sit idle the rest of it. So on a CPU worker the model borrows them (`CoreShare`, WorkerSettings.lend_idle_cores):
at the start of every model call and at every sampler step its thread takes the post cores too while no
post-processing runs, and gives them back at the next step once some does. The post threads never wait for the
model; at worst one step of the model overlaps the start of a post task.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import logging
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from core.settings import WorkerSettings

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class ThreadPlan:
    cores: int  # the cores this process may run on
    model: int  # torch intra-op threads in the model call
    post: int  # concurrent post-processing tasks, one thread each

    lend: bool = False  # the model borrows the post cores while no post-processing runs (CPU workers)

    def describe(self) -> str:
        lent = f", lent to the model while idle (up to {self.model + self.post})" if self.lend else ""
        return f"{self.cores} core(s): model {self.model} thread(s), post-processing {self.post}{lent}"


def usable_cores() -> int:
    """The cores this process may use (its CPU affinity, e.g. a container's cpuset), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def plan_threads(settings: WorkerSettings, device: str, cores: int) -> ThreadPlan:
    """The split of `cores` for a worker rendering on `device`; settings of 0 are derived."""
    if device == "remote":  # a cloud worker: no model here, post-processing may take every core
        return ThreadPlan(cores, 0, settings.post_threads or cores)
    post = settings.post_threads or (1 if cores <= 4 else cores // 4)
    if device == "cpu":
        model = settings.model_threads or max(1, cores - post)
        return ThreadPlan(cores, model, post, lend=settings.lend_idle_cores and model + post <= cores)
    # the accelerator computes; a few threads feed it
    return ThreadPlan(cores, settings.model_threads or max(1, min(4, cores - post)), post)


def limit_libraries() -> None:
    """Process-wide: OpenCV single-threaded (post-processing parallelises by task, not inside one), and torch's
    inter-op pool at one thread (diffusers runs one graph at a time). Both are best effort: torch refuses to
    resize its inter-op pool once it has been used."""
    try:
        import cv2

        cv2.setNumThreads(1)
    except ImportError:
        pass
    import torch

    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        log.debug("torch's inter-op pool was already started; left as it is")


def _set_torch_threads(count: int) -> None:
    import torch

    torch.set_num_threads(count)


def model_executor(plan: ThreadPlan) -> ThreadPoolExecutor:
    """The device thread: one model call at a time, with the plan's torch threads (set in that thread)."""
    return ThreadPoolExecutor(
        max_workers=1,
        thread_name_prefix="model",
        initializer=_set_torch_threads,
        initargs=(plan.model,),
    )


class CoreShare:
    """Who has the post-processing cores now: the model borrows them while no post-processing runs."""

    def __init__(self, plan: ThreadPlan) -> None:
        self.plan = plan
        self._running = 0  # post-processing tasks running now
        self._lock = threading.Lock()
        self._torch_threads = threading.local()  # torch's thread count is per calling thread

    @property
    def post_running(self) -> int:
        return self._running

    def model_threads(self) -> int:
        """The torch threads the model may use for what it computes next."""
        if self.plan.lend and self._running == 0:
            return self.plan.model + self.plan.post
        return self.plan.model

    def adjust(self) -> None:
        """In the model's thread, at the start of a call and at every step: take or give back the post cores."""
        wanted = self.model_threads()
        if getattr(self._torch_threads, "count", None) != wanted:
            _set_torch_threads(wanted)
            self._torch_threads.count = wanted

    @contextlib.contextmanager
    def post_processing(self) -> Iterator[None]:
        """While this is open, post-processing runs: the model keeps to its own cores. A job holds it from its
        first check to its last upload, so the model does not take the cores back between two of its tasks."""
        with self._lock:
            self._running += 1
        try:
            yield
        finally:
            with self._lock:
                self._running -= 1

    def wrap(self, function: Callable[..., T]) -> Callable[..., T]:
        """`function`, counted as post-processing while it runs."""

        def counted(*args: Any, **kwargs: Any) -> T:
            with self.post_processing():
                return function(*args, **kwargs)

        return counted


class _PostExecutor(ThreadPoolExecutor):
    """A ThreadPoolExecutor whose every task counts as post-processing in a CoreShare (the image check submits
    to it directly)."""

    def __init__(self, share: CoreShare, max_workers: int) -> None:
        super().__init__(
            max_workers=max_workers,
            thread_name_prefix="post",
            initializer=_set_torch_threads,  # torch ops in post-processing (e.g. a watermark) stay single
            initargs=(1,),
        )
        self.share = share

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        return super().submit(self.share.wrap(fn), *args, **kwargs)


class PostPool:
    """Runs post-processing (checks, encoders) on the plan's post threads, off the model's cores."""

    def __init__(self, plan: ThreadPlan, share: CoreShare | None = None) -> None:
        self.plan = plan
        self.share = share or CoreShare(plan)
        self.executor: ThreadPoolExecutor = _PostExecutor(self.share, plan.post)

    async def run(self, function: Callable[..., T], /, *args: Any) -> T:
        """`function(*args)` on a post thread, with the caller's context (like asyncio.to_thread)."""
        loop = asyncio.get_running_loop()
        call = functools.partial(contextvars.copy_context().run, function, *args)
        return await loop.run_in_executor(self.executor, call)

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
