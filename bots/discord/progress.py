"""STARTED/PROGRESS events → edits of the command's reply, throttled.

When to edit is core's decision (core/delivery/progress.py, shared with the Telegram bot): at most one edit per
`interval_s` per request, the first at once and the newest of a burst when the interval is over (with the burst's
newest live preview, even when its last step brought none), so the reply never stays behind; nothing once the
request is over (`finish`), as a render can report progress after its job ended.
This module only does the edits: a timer shows held updates when they fall due, and `end` lets an edit already on
its way land before the result replaces it. Progress is advisory: a failed edit is logged and dropped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from core.delivery.progress import ProgressCoalescer, keep_live_preview, show_held
from core.models.result import ResultEvent
from core.tasks import cancel_and_wait

log = logging.getLogger(__name__)

Edit = Callable[[ResultEvent, dict[str, str]], Awaitable[None]]  # show one event in the reply of `target`


def _newest(
    held: tuple[ResultEvent, dict[str, str]], newer: tuple[ResultEvent, dict[str, str]]
) -> tuple[ResultEvent, dict[str, str]]:
    """The newer step, keeping the held live preview when it brings none (the reply shows the newest picture)."""
    return keep_live_preview(held[0], newer[0]), newer[1]


class ProgressThrottle:
    def __init__(self, interval_s: float, edit: Edit) -> None:
        self.interval_s = interval_s
        self._edit = edit
        # keyed by request: each request has its own reply
        self._coalescer: ProgressCoalescer[str, tuple[ResultEvent, dict[str, str]]] = ProgressCoalescer(
            interval_s, merge=_newest
        )
        self._on_the_way: dict[str, asyncio.Task[None]] = {}  # reply → the edit being sent
        self._replies: dict[str, str] = {}  # request id → its reply key, for `end`
        self._timer: asyncio.Task[None] | None = None

    def finished(self, request_id: str) -> bool:
        return self._coalescer.ended(request_id)

    def finish(self, request_id: str) -> None:
        """Remember that the request is over, so its late progress never overwrites the result."""
        self._coalescer.end(request_id)

    async def show(self, reply: str, event: ResultEvent, target: dict[str, str]) -> None:
        """Show `event` in `reply` (any key naming one reply) now, or when its interval is over."""
        self._replies[event.request_id] = reply
        ready = self._coalescer.offer(event.request_id, (event, target), time.monotonic())
        if ready is not None:
            await self._send(reply, *ready)
        elif self._timer is None or self._timer.done():
            self._timer = asyncio.create_task(
                show_held(self._coalescer, self._show_due), name="discord-progress"
            )

    async def end(self, reply: str) -> None:
        """No progress edit of `reply` after this: a held one is dropped (`finish`), one on its way lands first."""
        for request_id in [key for key, value in self._replies.items() if value == reply]:
            del self._replies[request_id]
        on_the_way = self._on_the_way.get(reply)
        if on_the_way is not None:
            await asyncio.wait([on_the_way])

    async def close(self) -> None:
        """Drop the progress edits still waiting for their interval."""
        if self._timer is not None:
            await cancel_and_wait(self._timer)
            self._timer = None

    async def _show_due(self, request_id: str, held: tuple[ResultEvent, dict[str, str]]) -> None:
        reply = self._replies.get(request_id)
        if reply is not None and not self._coalescer.ended(request_id):
            await self._send(reply, *held)

    async def _send(self, reply: str, event: ResultEvent, target: dict[str, str]) -> None:
        task = asyncio.ensure_future(self._edit(event, target))
        self._on_the_way[reply] = task
        try:
            await asyncio.wait([task])
            self._coalescer.landed(event.request_id, time.monotonic())  # the next edit counts from here
            if not task.cancelled() and task.exception() is not None:
                log.warning(
                    "progress edit of message %s failed", target.get("message_id"), exc_info=task.exception()
                )
        finally:
            if self._on_the_way.get(reply) is task:
                del self._on_the_way[reply]
