"""Cancel a task at a chosen await of the code under test, to sweep every await of a scenario in turn.

    with CancelPoints(run_telegram_bot, EventConsumer.run) as points:
        bot = asyncio.create_task(run_telegram_bot(...))
        points.cancel_at(bot, 7)  # cancelled at the 7th suspension from now, as a SIGTERM landing there would

While installed (a task factory on the running loop), every task whose coroutine runs one of the given
functions is counted each time it suspends (awaits something not ready yet); `cancel_at(task, n)` cancels `task`
right after the n-th suspension from now, while the awaited thing is still pending. For the same scenario the
suspensions come in the same order, so a loop over n = 1, 2, … cancels once at each of them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Generator
from types import TracebackType
from typing import Any


class _Counted(Coroutine[Any, Any, Any]):
    """A coroutine that reports each suspension of the one it wraps."""

    def __init__(
        self, coro: Coroutine[Any, Any, Any], suspended: Callable[[Coroutine[Any, Any, Any]], None]
    ) -> None:
        self._coro = coro
        self._suspended = suspended
        self.cr_code = getattr(coro, "cr_code", None)  # for asyncio's task repr

    def send(self, value: Any) -> Any:
        yielded = self._coro.send(value)  # StopIteration (the coroutine returned) is not a suspension
        self._suspended(self._coro)
        return yielded

    def throw(self, *args: Any) -> Any:
        yielded = self._coro.throw(*args)
        self._suspended(self._coro)
        return yielded

    def close(self) -> None:
        self._coro.close()

    def __next__(self) -> Any:
        return self.send(None)

    def __await__(self) -> Generator[Any, None, Any]:
        return self  # type: ignore[return-value]


class CancelPoints:
    def __init__(self, *functions: Callable[..., Any]) -> None:
        self._codes = {function.__code__ for function in functions}
        self.suspensions = 0  # so far, over all counted tasks
        self._target: asyncio.Future[Any] | None = None
        self._at = 0
        self.where = ""  # the await the last cancellation landed at: "function:line > … > function:line"

    def __enter__(self) -> CancelPoints:
        self._loop = asyncio.get_running_loop()
        self._previous = self._loop.get_task_factory()
        self._loop.set_task_factory(self._task)  # type: ignore[arg-type]
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._loop.set_task_factory(self._previous)

    def cancel_at(self, task: asyncio.Future[Any], n: int) -> None:
        """Cancel `task` just after the n-th suspension (n ≥ 1) of a counted task from now."""
        self._target, self._at = task, self.suspensions + n

    @property
    def pending(self) -> bool:
        """A cancellation was asked for and has not happened yet."""
        return self._target is not None

    def forget(self) -> None:
        """Drop the cancellation asked for (the task went idle before its n-th suspension)."""
        self._target = None

    def _task(self, loop: asyncio.AbstractEventLoop, coro: Any, **options: Any) -> asyncio.Task[Any]:
        if getattr(coro, "cr_code", None) in self._codes:
            coro = _Counted(coro, self._suspended)
        return asyncio.Task(coro, loop=loop, **options)

    def _suspended(self, coro: Coroutine[Any, Any, Any]) -> None:
        self.suspensions += 1
        if self._target is not None and self.suspensions >= self._at:
            self.where = _awaiting(coro)
            self._loop.call_soon(self._target.cancel)  # once the task has parked at this await
            self._target = None


def _awaiting(coro: Any) -> str:
    """Where a suspended coroutine waits: its chain of awaits, innermost last (the last few)."""
    chain = []
    while coro is not None:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is None:
            break
        chain.append(f"{frame.f_code.co_name}:{frame.f_lineno}")
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    return " > ".join(chain[-4:])
