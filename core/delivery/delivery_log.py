"""Where front ends delivered each result (chat and message ids), so a moderator's delete removes the message too."""

from __future__ import annotations

import json

from redis.asyncio import Redis

from core.keys import MESSAGES_KEY, RESULT_TTL_S


class DeliveryLog:
    def __init__(self, redis: Redis, ttl_s: int = RESULT_TTL_S) -> None:
        self.redis = redis
        self.ttl_s = ttl_s

    async def record(self, request_id: str, location: dict[str, str]) -> None:
        key = MESSAGES_KEY.format(request_id=request_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.rpush(key, json.dumps(location, sort_keys=True))
            pipe.expire(key, self.ttl_s)
            await pipe.execute()

    async def locations(self, request_id: str) -> list[dict[str, str]]:
        raw: list[bytes] = await self.redis.lrange(MESSAGES_KEY.format(request_id=request_id), 0, -1)  # type: ignore[misc]
        return [json.loads(value) for value in raw]
