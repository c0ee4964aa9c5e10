"""Each user's most recent request id, so /cancel knows what to cancel."""

from __future__ import annotations

from redis.asyncio import Redis

from core import constants as c

LAST_REQUEST_KEY = f"{c.KEY_PREFIX}:tg:last:{{user_id}}"
LAST_REQUEST_TTL_S = 24 * 3600


class LastRequests:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def remember(self, user_id: str, request_id: str) -> None:
        await self.redis.set(LAST_REQUEST_KEY.format(user_id=user_id), request_id, ex=LAST_REQUEST_TTL_S)

    async def get(self, user_id: str) -> str | None:
        raw = await self.redis.get(LAST_REQUEST_KEY.format(user_id=user_id))
        if raw is None:
            return None
        return raw.decode() if isinstance(raw, bytes) else str(raw)
