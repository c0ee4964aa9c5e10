"""STARTED/PROGRESS events → edits of the command's reply, throttled.

At most one edit per `interval_s` per reply: the first at once, and the newest of a burst when the interval is
over, so the reply never stays behind. None once the request is over (`finish`: the last `FINISHED_MEMORY`
finished requests are remembered, as a render can outlive its job's timeout and report progress after the
error). Progress is advisory: a failed edit is logged and dropped, never retried.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from core.models.result import ResultEvent

log = logging.getLogger(__name__)

FINISHED_MEMORY = 4096  # finished request ids kept to drop their late progress

Edit = Callable[[ResultEvent, dict[str, str]], Awaitable[None]]  # show one event in the reply of `target`


@dataclass
class _Reply:
    """One reply's progress edits: when the last went out, and the newest event still to show."""

    last_at: float = float("-inf")
    pending: ResultEvent | None = None
    task: asyncio.Task[None] | None = None  # shows `pending` once the interval is over
    editing: bool = False  # the task's edit is on its way: a result waits for it rather than cancel it


class ProgressThrottle:
    def __init__(self, interval_s: float, edit: Edit) -> None:
        self.interval_s = interval_s
        self._edit = edit
        self._replies: dict[str, _Reply] = {}
        self._finished: OrderedDict[str, None] = OrderedDict()

    def finished(self, request_id: str) -> bool:
        return request_id in self._finished

    def finish(self, request_id: str) -> None:
        """Remember that the request is over, so its late progress never overwrites the result."""
        self._finished[request_id] = None
        self._finished.move_to_end(request_id)
        while len(self._finished) > FINISHED_MEMORY:
            self._finished.popitem(last=False)

    async def show(self, reply: str, event: ResultEvent, target: dict[str, str]) -> None:
        """Show `event` in `reply` (any key naming one reply) now, or when its interval is over."""
        if self.finished(event.request_id):
            return
        state = self._replies.setdefault(reply, _Reply())
        if state.task is None and time.monotonic() - state.last_at >= self.interval_s:
            await self._edit_now(state, event, target)
            return
        state.pending = event  # the newest wins; shown when the interval is over
        if state.task is None:
            state.task = asyncio.create_task(self._trailing(state, target))

    async def end(self, reply: str) -> None:
        """No progress edit of `reply` after this: a waiting one is dropped, one on its way is let land first."""
        state = self._replies.pop(reply, None)
        if state is None or state.task is None:
            return
        state.pending = None
        if not state.editing:
            state.task.cancel()
        await asyncio.wait([state.task])

    async def close(self) -> None:
        """Drop the progress edits still waiting for their interval."""
        tasks = [state.task for state in self._replies.values() if state.task is not None]
        self._replies.clear()
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)

    async def _trailing(self, state: _Reply, target: dict[str, str]) -> None:
        try:
            while state.pending is not None:
                await asyncio.sleep(state.last_at + self.interval_s - time.monotonic())
                event, state.pending = state.pending, None
                if event is None:
                    break
                state.editing = True
                await self._edit_now(state, event, target)
                state.editing = False
        except Exception:
            log.warning("progress edit of message %s failed", target.get("message_id"), exc_info=True)
        finally:
            state.editing = False
            state.task = None

    async def _edit_now(self, state: _Reply, event: ResultEvent, target: dict[str, str]) -> None:
        state.last_at = time.monotonic()
        await self._edit(event, target)
