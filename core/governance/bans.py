"""Banned users: a key per user with the reason, expiring with the ban (or never)."""

from __future__ import annotations

import time

from redis.asyncio import Redis

from core.errors import NotAllowed
from core.governance.quotas import format_duration
from core.keys import BAN_KEY, REFUSALS_KEY
from core.models.request import Frozen

GLOBAL = "global"


class BanRecord(Frozen):
    """What BAN_KEY stores; the key itself holds the scope and the owner."""

    reason: str
    by: str
    until: float | None  # None: until lifted


class Ban(BanRecord):
    owner: str
    scope: str


class BanList:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def ban(
        self, owner: str, reason: str, by: str, duration_s: float | None = None, scope: str | None = None
    ) -> Ban:
        """Ban in one community (scope = its key) or everywhere (scope None)."""
        scope = scope or GLOBAL
        until = time.time() + duration_s if duration_s else None
        record = BanRecord(reason=reason, by=by, until=until)
        key = BAN_KEY.format(scope=scope, owner=owner)
        await self.redis.set(key, record.model_dump_json(), ex=int(duration_s) if duration_s else None)
        return Ban(owner=owner, scope=scope, **record.model_dump())

    async def unban(self, owner: str, scope: str | None = None) -> bool:
        return bool(await self.redis.delete(BAN_KEY.format(scope=scope or GLOBAL, owner=owner)))

    async def get(self, owner: str, community: str | None = None) -> Ban | None:
        """The ban that applies to the user here: everywhere, or in this community."""
        for scope in (GLOBAL, community):
            if scope is None:
                continue
            raw = await self.redis.get(BAN_KEY.format(scope=scope, owner=owner))
            if raw is not None:
                record = BanRecord.model_validate_json(raw)
                return Ban(owner=owner, scope=scope, **record.model_dump())
        return None

    async def check(self, owner: str, community: str | None = None) -> None:
        """Raise NotAllowed with one clear sentence when the user is banned here."""
        ban = await self.get(owner, community)
        if ban is None:
            return
        text = "You've been banned from using this bot"
        if ban.reason:
            text += f" ({ban.reason})"
        if ban.until:
            text += f"; it ends in {format_duration(ban.until - time.time())}"
        raise NotAllowed(text + ". If you think this is a mistake, please ask a moderator.")

    async def count_refusal(self, owner: str, window_s: int) -> int:
        """Count a refused prompt within a sliding window; returns the count in the window."""
        key = REFUSALS_KEY.format(owner=owner)
        now = time.time()
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zadd(key, {f"{now:.6f}": now})
            pipe.zremrangebyscore(key, 0, now - window_s)
            pipe.zcard(key)
            pipe.expire(key, window_s)
            _, _, count, _ = await pipe.execute()
        return int(count)

    async def clear_refusals(self, owner: str) -> None:
        await self.redis.delete(REFUSALS_KEY.format(owner=owner))
