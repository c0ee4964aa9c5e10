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

On a CPU worker the split leaves the post cores idle most of the time: a job's checks and encodings take a
fraction of its model time. WorkerSettings.cpu_turns (off by default: see there for why) has the two take turns on
every core instead (`CoreShare`): the model runs with all the cores, and at the start of each call and at every
sampler step it pauses while post-processing is waiting or running; each post-processing task waits for the
model's pause and then runs beside the others, one per core. The model keeps one thread count throughout:
changing it mid-render changes the sums' order, and the same seed would no longer give the same bytes.
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

    turns: bool = False  # the model and post-processing take turns on every core (CPU workers)

    def describe(self) -> str:
        if self.turns:
            return (
                f"{self.cores} core(s), taken in turns: model {self.model} thread(s), "
                f"post-processing {self.post} at a time between its steps"
            )
        return f"{self.cores} core(s): model {self.model} thread(s), post-processing {self.post}"


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
    if device == "cpu" and settings.cpu_turns:
        return ThreadPlan(cores, settings.model_threads or cores, settings.post_threads or cores, turns=True)
    if device == "cpu":
        return ThreadPlan(cores, settings.model_threads or max(1, cores - post), post)
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
    """This thread's torch intra-op threads. torch gives each thread, at its first use, the count the process
    last set from any thread, and that first use would undo a count set before it: the post pool's later
    set_num_threads(1) became the model thread's count. So the first use comes first here."""
    import torch

    torch.get_num_threads()  # this thread's lazy initialisation, from the process-wide count
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
    """Turns on the cores of a CPU worker: the model pauses between steps while post-processing waits or runs.

    Only a plan with turns has one (PostPool.share); without, the plan's split of the cores is the sharing and
    nothing waits.
    """

    def __init__(self) -> None:
        self._turns = threading.Condition()
        self._held = 0  # jobs in post-processing (their checks, encodings and uploads)
        self._tasks = 0  # post-processing tasks waiting for their turn or running
        self._computing = False  # the model is between two pauses

    @property
    def post_waiting(self) -> int:
        return self._held + self._tasks

    def pause(self) -> None:
        """In the model's thread, at the start of a call and at every step: let post-processing run first."""
        with self._turns:
            self._computing = False
            self._turns.notify_all()
            self._turns.wait_for(lambda: self._held == 0 and self._tasks == 0)
            self._computing = True

    def done(self) -> None:
        """In the model's thread, when a call ends (whatever way): post-processing need not wait for it."""
        with self._turns:
            self._computing = False
            self._turns.notify_all()

    @contextlib.contextmanager
    def post_processing(self) -> Iterator[None]:
        """Held around a job's post-processing, from its first check to its last encoding: the model pauses at its
        next step until it ends, instead of taking a step between each two of the job's tasks. Never blocks."""
        with self._turns:
            self._held += 1
        try:
            yield
        finally:
            with self._turns:
                self._held -= 1
                self._turns.notify_all()

    def wrap(self, function: Callable[..., T]) -> Callable[..., T]:
        """`function`, run as post-processing: after the model's pause, on a post thread."""

        def in_turn(*args: Any, **kwargs: Any) -> T:
            with self._turns:
                self._tasks += 1
                self._turns.wait_for(lambda: not self._computing)
            try:
                return function(*args, **kwargs)
            finally:
                with self._turns:
                    self._tasks -= 1
                    self._turns.notify_all()

        return in_turn


class _PostExecutor(ThreadPoolExecutor):
    """A ThreadPoolExecutor whose every task runs in turn with the model (the image check submits to it
    directly)."""

    def __init__(self, share: CoreShare, max_workers: int) -> None:
        super().__init__(max_workers, "post", _set_torch_threads, (1,))
        self.share = share

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        return super().submit(self.share.wrap(fn), *args, **kwargs)


def _post_executor(workers: int, share: CoreShare | None) -> ThreadPoolExecutor:
    """The post threads; torch ops in post-processing (e.g. a watermark) stay single-threaded."""
    if share is not None:
        return _PostExecutor(share, workers)
    return ThreadPoolExecutor(workers, "post", _set_torch_threads, (1,))


class PostPool:
    """Runs post-processing (checks, encoders) on the plan's post threads: off the model's cores, or in turns
    with the model (`share`, for a plan with turns; None otherwise)."""

    def __init__(self, plan: ThreadPlan) -> None:
        self.plan = plan
        self.share = CoreShare() if plan.turns else None
        self.executor = _post_executor(plan.post, self.share)

    def post_processing(self) -> contextlib.AbstractContextManager[None]:
        """Held around a job's checks and encodings: with turns, the model pauses until it ends."""
        return contextlib.nullcontext() if self.share is None else self.share.post_processing()

    async def run(self, function: Callable[..., T], /, *args: Any) -> T:
        """`function(*args)` on a post thread, with the caller's context (like asyncio.to_thread)."""
        loop = asyncio.get_running_loop()
        call = functools.partial(contextvars.copy_context().run, function, *args)
        return await loop.run_in_executor(self.executor, call)

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
