"""Stopping background tasks without losing the stopper's own cancellation.

The pattern `task.cancel(); with suppress(CancelledError): await task` has a hole: when the task doing it is
itself cancelled while it waits, asyncio hands that cancellation on to `task` (already cancelling), and the
CancelledError that comes back is taken for `task`'s own and suppressed. The caller's cancellation is gone, and a
caller that loops until cancelled runs for ever. That is how a bot that was told to stop kept polling Telegram:
its result consumer swallowed the cancel while stopping a lease-renewal task, and the bot, waiting for the
consumer, never reached the code that stops polling.

`cancel_and_wait` tells the two apart with `Task.cancelling()` (Python 3.11): a cancellation of the caller that
arrived while it waited is raised again once `task` has ended. `to_the_end` runs shutdown steps that must not be
cut short (stop polling, acknowledge a reply that was sent) through any further cancellation, and raises that
cancellation after they have finished.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

T = TypeVar("T")


def _cancels() -> int:
    current = asyncio.current_task()
    return current.cancelling() if current is not None else 0


async def cancel_and_wait(task: asyncio.Future[Any]) -> None:
    """Cancel `task` and wait until it has ended; its CancelledError is not raised, its other errors are.

    If the caller is cancelled while it waits, `task` is still waited for (the cancellation reaches it too) and
    then CancelledError is raised here, so the caller stops as it was told to.
    """
    before = _cancels()
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    except Exception:
        if _cancels() > before:
            raise asyncio.CancelledError from None
        raise
    if _cancels() > before:  # the caller was cancelled while it waited: `task` took that cancel as its own
        raise asyncio.CancelledError


async def to_the_end(step: Awaitable[T]) -> T:
    """Await `step` to its end even if the caller is cancelled meanwhile; then raise that cancellation.

    For steps a shutdown must finish whatever happens (a second SIGTERM, a cancel landing in the cleanup):
    stopping the updates poller, recording that a reply went out. `step` must end by itself (bounded waits).
    """
    running = asyncio.ensure_future(step)
    interrupted = False
    while not running.done():
        try:
            await asyncio.shield(running)
        except asyncio.CancelledError:
            if running.done() and running.cancelled():
                raise
            interrupted = True
    if interrupted:
        running.exception()  # retrieved: the cancellation below is what the caller hears about
        raise asyncio.CancelledError
    return running.result()
