"""Each user's finished results, newest first, for /history and the web gallery.

A Redis sorted set per user (HISTORY_KEY: request id → when the result was stored), written by
`ResultStore.save` for every result that shows images, capped at HISTORY_KEPT and living RESULT_TTL_S from the
latest result (as long as the results it points at). Pages are read by position, or from a result on the page
before (so the page buttons carry a request id, not state).
"""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from core import constants as c
from core.keys import HISTORY_KEY, RESULT_TTL_S


@dataclass(frozen=True)
class HistoryPage:
    request_ids: tuple[str, ...]  # newest first
    start: int  # the 0-based position of the first one among all the user's results
    total: int

    @property
    def has_newer(self) -> bool:
        return self.start > 0

    @property
    def has_older(self) -> bool:
        return self.start + len(self.request_ids) < self.total

    @property
    def number(self) -> int:
        """1-based page number, for "page 2 of 5"."""
        return self.start // c.HISTORY_PAGE + 1

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // c.HISTORY_PAGE))


class HistoryIndex:
    def __init__(self, redis: Redis, kept: int = c.HISTORY_KEPT, ttl_s: int = RESULT_TTL_S) -> None:
        self.redis = redis
        self.kept = kept
        self.ttl_s = ttl_s

    async def add(self, owner: str, request_id: str, at: float) -> None:
        """Record a result once (a result saved again, after a partial delete, keeps its place)."""
        key = HISTORY_KEY.format(owner=owner)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zadd(key, {request_id: at}, nx=True)
            pipe.zremrangebyrank(key, 0, -self.kept - 1)  # the oldest beyond the cap
            pipe.expire(key, self.ttl_s)
            await pipe.execute()

    async def remove(self, owner: str, request_id: str) -> None:
        await self.redis.zrem(HISTORY_KEY.format(owner=owner), request_id)

    async def contains(self, owner: str, request_id: str) -> bool:
        return await self.redis.zscore(HISTORY_KEY.format(owner=owner), request_id) is not None

    async def page(self, owner: str, start: int = 0, size: int = c.HISTORY_PAGE) -> HistoryPage:
        """The results from position `start` (0: the newest), at most `size` of them."""
        key = HISTORY_KEY.format(owner=owner)
        total = int(await self.redis.zcard(key))
        start = max(0, min(start, max(0, total - 1)))
        raw = await self.redis.zrevrange(key, start, start + size - 1)
        ids = tuple(value.decode() if isinstance(value, bytes) else str(value) for value in raw)
        return HistoryPage(ids, start, total)

    async def page_around(
        self, owner: str, anchor: str, older: bool, size: int = c.HISTORY_PAGE
    ) -> HistoryPage:
        """The page after `anchor` (older: the results below it) or before it (the `size` results above it).
        An anchor no longer in the index (deleted, or fallen off the cap) gives the first page."""
        rank = await self.redis.zrevrank(HISTORY_KEY.format(owner=owner), anchor)
        if rank is None:
            return await self.page(owner, 0, size)
        start = int(rank) + 1 if older else max(0, int(rank) - size)
        return await self.page(owner, start, size)
