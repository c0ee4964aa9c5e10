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
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
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

    def describe(self) -> str:
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
    if device == "cpu":
        model = settings.model_threads or max(1, cores - post)
    else:  # the accelerator computes; a few threads feed it
        model = settings.model_threads or max(1, min(4, cores - post))
    return ThreadPlan(cores, model, post)


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


class PostPool:
    """Runs post-processing (checks, encoders) on the plan's post threads, off the model's cores."""

    def __init__(self, plan: ThreadPlan) -> None:
        self.plan = plan
        self.executor = ThreadPoolExecutor(
            max_workers=plan.post,
            thread_name_prefix="post",
            initializer=_set_torch_threads,  # torch ops in post-processing (e.g. a watermark) stay single
            initargs=(1,),
        )

    async def run(self, function: Callable[..., T], /, *args: Any) -> T:
        """`function(*args)` on a post thread, with the caller's context (like asyncio.to_thread)."""
        loop = asyncio.get_running_loop()
        call = functools.partial(contextvars.copy_context().run, function, *args)
        return await loop.run_in_executor(self.executor, call)

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
