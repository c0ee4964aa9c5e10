"""Finished results by request id, so buttons on old messages (U2, V3, 🔄) can find their parent's images."""

from __future__ import annotations

from redis.asyncio import Redis

from core.errors import NotFound
from core.keys import RESULT_KEY, RESULT_TTL_S
from core.models.result import ResultEvent


class ResultStore:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def save(self, event: ResultEvent) -> None:
        await self.redis.set(
            RESULT_KEY.format(request_id=event.request_id), event.model_dump_json(), ex=RESULT_TTL_S
        )

    async def load(self, request_id: str) -> ResultEvent:
        raw = await self.redis.get(RESULT_KEY.format(request_id=request_id))
        if raw is None:
            raise NotFound("I can't find the images for that button any more; please run /imagine again.")
        return ResultEvent.model_validate_json(raw)
