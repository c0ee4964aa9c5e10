"""The Hub: who watches what — the owner ("platform:user") of each open page, and that page's queue of events.

A page that keeps up with nothing loses old progress, never what is newest (a full queue drops its oldest event),
and a page that missed a result finds it in the gallery.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Iterator

from core.governance.quotas import owner_id
from core.models.request import Requester
from core.models.result import ResultEvent

QUEUE_SIZE = 64


class Hub:
    """Who watches what: the owner ("platform:user") → the queues of their open pages."""

    def __init__(self) -> None:
        self._pages: dict[str, set[asyncio.Queue[ResultEvent]]] = defaultdict(set)

    def watchers(self, requester: Requester) -> int:
        return len(self._pages.get(owner_id(requester), ()))

    async def publish(self, event: ResultEvent) -> None:
        for queue in list(self._pages.get(owner_id(event.requester), ())):
            if queue.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()  # the oldest goes: a slow page loses stale progress first
            queue.put_nowait(event)

    @contextlib.contextmanager
    def watch(self, requester: Requester) -> Iterator[asyncio.Queue[ResultEvent]]:
        """A queue that gets the requester's events while the block runs (one per open page)."""
        owner = owner_id(requester)
        queue: asyncio.Queue[ResultEvent] = asyncio.Queue(QUEUE_SIZE)
        self._pages[owner].add(queue)
        try:
            yield queue
        finally:
            self._pages[owner].discard(queue)
            if not self._pages[owner]:
                del self._pages[owner]
