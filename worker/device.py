"""Where models run, in which precision, and one model call at a time on the device.

The choices (WorkerSettings.device and .dtype) are pure functions of the settings and of what the machine has,
so they are tested without one; `detect_device` and `torch_dtype` are the two thin calls into torch.

`DeviceGuard` runs the blocking model calls in a thread, one at a time, each with an `Interruption` that its
thread reads at every sampler step: stop when the call's time limit has passed, or when nobody awaits the
result any more. A thread cannot be stopped from outside, so the device stays held until the thread has really
returned: a new job's model call never starts on a device an earlier call still uses.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor
from typing import TYPE_CHECKING, Literal, Protocol, TypeVar

from core.errors import ConfigError, TimeLimitExceeded
from core.models.catalog import Family
from core.settings import WorkerSettings

if TYPE_CHECKING:
    import torch

DeviceName = Literal["cpu", "cuda", "mps"]
DtypeName = Literal["float16", "bfloat16", "float32"]
T = TypeVar("T")


def pick_device(requested: str, cuda_available: bool, mps_available: bool) -> DeviceName:
    """Auto → cuda, else mps, else cpu; an explicit device the machine lacks is a configuration error."""
    if requested == "auto":
        if cuda_available:
            return "cuda"
        return "mps" if mps_available else "cpu"
    if requested == "cpu":
        return "cpu"
    if requested == "cuda":
        if not cuda_available:
            raise ConfigError(
                "IMAGEBOT_WORKER__DEVICE is 'cuda' but torch sees no CUDA GPU. Install a CUDA build of torch, "
                "check the driver with nvidia-smi, or set IMAGEBOT_WORKER__DEVICE=auto."
            )
        return "cuda"
    if requested == "mps":
        if not mps_available:
            raise ConfigError(
                "IMAGEBOT_WORKER__DEVICE is 'mps' but this machine has no Apple GPU available to torch. "
                "Set IMAGEBOT_WORKER__DEVICE=auto."
            )
        return "mps"
    raise ConfigError(f"IMAGEBOT_WORKER__DEVICE: unknown device {requested!r}; use auto, cpu, cuda or mps.")


def pick_dtype(requested: str, device: DeviceName, family: Family) -> DtypeName:
    """Auto → half precision on CUDA (bfloat16 for FLUX, which overflows in float16), float32 elsewhere."""
    if requested == "auto":
        if device == "cuda":
            return "bfloat16" if family is Family.FLUX else "float16"
        return "float32"
    if requested in ("float16", "bfloat16", "float32"):
        return requested  # type: ignore[return-value]
    raise ConfigError(
        f"IMAGEBOT_WORKER__DTYPE: unknown dtype {requested!r}; use auto, float16, bfloat16 or float32."
    )


def generator_device(device: DeviceName) -> str:
    """Where seeded generators live: on the GPU for CUDA, on the CPU for mps (whose generators are not seedable
    reproducibly) and cpu."""
    return "cuda" if device == "cuda" else "cpu"


def detect_device(settings: WorkerSettings) -> DeviceName:
    """The device this worker renders on, asking torch what the machine has."""
    import torch

    mps = getattr(torch.backends, "mps", None)
    mps_available = bool(mps is not None and mps.is_available())
    return pick_device(settings.device, torch.cuda.is_available(), mps_available)


def torch_dtype(name: DtypeName) -> torch.dtype:
    import torch

    dtypes: dict[str, torch.dtype] = {
        "float16": torch.float16,
        "bfloat16": torch.bfloat16,
        "float32": torch.float32,
    }
    return dtypes[name]


class Turns(Protocol):
    """How a model call shares the cores with post-processing (worker.threads.CoreShare)."""

    def pause(self) -> None: ...  # before a call and at every step, in the model's thread

    def done(self) -> None: ...  # when a call ends, in the model's thread


class RenderInterrupted(Exception):
    """Raised in a model call's thread when the job awaiting it was cancelled (arq's timeout, a shutdown).

    Nobody reads it: it only ends the thread early, so the device is free sooner.
    """


def time_limit_message(limit_s: float) -> str:
    return (
        f"Your request took longer than the {limit_s:g} s limit, so I stopped it. You haven't been charged. "
        "Please ask for fewer images (--n), fewer steps (--steps) or a smaller size (--size)."
    )


class Interruption:
    """What a running model call is asked from outside its thread: read by `check()` at every sampler step.

    The deadline is `limit_s` from the moment the call got the device (a wait behind another job's call does
    not count); `cancel()` comes from the event loop when the job awaiting the call is cancelled.
    """

    def __init__(
        self,
        limit_s: float | None,
        clock: Callable[[], float] = time.monotonic,
        between_steps: Callable[[], None] | None = None,
    ) -> None:
        """`between_steps`: run in the model's thread at every check (Turns.pause)."""
        self.limit_s = limit_s
        self.clock = clock
        self.between_steps = between_steps
        self.deadline = None if limit_s is None else clock() + limit_s
        self._cancelled = threading.Event()

    def cancel(self) -> None:
        self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def check(self) -> None:
        """Raise RenderInterrupted or TimeLimitExceeded when the call must stop; cheap and thread-safe."""
        if self._cancelled.is_set():
            raise RenderInterrupted("the job awaiting this model call was cancelled")
        if self.between_steps is not None:
            self.between_steps()
        if self.deadline is not None and self.limit_s is not None and self.clock() >= self.deadline:
            raise TimeLimitExceeded(time_limit_message(self.limit_s), self.limit_s)


class DeviceGuard:
    """One blocking model call at a time on a device, held until that call's thread has really ended."""

    def __init__(self, executor: Executor | None = None, turns: Turns | None = None) -> None:
        """`executor`: the device thread (worker.threads.model_executor), None: asyncio's default;
        `turns`: how the model's thread shares the cores (worker.threads.CoreShare): it pauses before each call
        and at every step, and says when a call is done."""
        self._lock = asyncio.Lock()
        self._executor = executor
        self._turns = turns

    @property
    def busy(self) -> bool:
        """True while a model call's thread runs (even one whose job has already given up on it)."""
        return self._lock.locked()

    async def run(self, call: Callable[[Interruption], T], limit_s: float | None = None) -> T:
        """Wait for the device, then run `call(interruption)` in a thread and return what it returns.

        If the caller is cancelled, the call is asked to stop at its next step and the device stays held
        until its thread returns; the cancellation then reaches the caller at once.
        """
        result = await self.run_prepared(lambda: call, limit_s)
        return result  # type: ignore[return-value]  # prepare never declines here

    async def run_prepared(
        self, prepare: Callable[[], Callable[[Interruption], T] | None], limit_s: float | None = None
    ) -> T | None:
        """Like `run`, but the call is chosen once the device is ours: `prepare()` runs on the event loop right
        after the device is acquired (a micro-batch takes whatever is waiting then) and may decline with None,
        which frees the device at once and returns None."""
        await self._lock.acquire()
        try:
            call = prepare()
            if call is None:
                self._lock.release()
                return None
            turns = self._turns
            # the clock starts once the device is ours
            interruption = Interruption(limit_s, between_steps=turns.pause if turns else None)

            def guarded() -> T:
                try:
                    interruption.check()  # the job may have been cancelled before this thread started
                    return call(interruption)
                finally:
                    if turns is not None:
                        turns.done()

            loop = asyncio.get_running_loop()
            running = asyncio.ensure_future(loop.run_in_executor(self._executor, guarded))
        except BaseException:
            self._lock.release()
            raise
        running.add_done_callback(self._release)
        try:
            return await asyncio.shield(running)
        except asyncio.CancelledError:
            interruption.cancel()
            raise

    def close(self) -> None:
        """Let the device thread go once its last call has ended (a new call would fail)."""
        if self._executor is not None:
            self._executor.shutdown(wait=False)

    def _release(self, running: asyncio.Future[T]) -> None:
        self._lock.release()
        if not running.cancelled():
            # Retrieved here, so a call whose caller was cancelled logs no "exception never retrieved".
            running.exception()
