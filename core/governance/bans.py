"""Banned users: a key per user and scope with the reason, expiring with the ban (or never).

A ban's scope is one community (its key, "platform:community_id"), private chats with the bot (PRIVATE: where
automatic bans from a private chat apply) or everywhere (GLOBAL: an owner's ban from a private chat). A set per
user indexes the scopes they are banned in, so `/admin usage` can list every active ban.
"""

from __future__ import annotations

import time

from redis.asyncio import Redis

from core.errors import NotAllowed
from core.governance.quotas import format_duration
from core.keys import BAN_KEY, BANS_OF_KEY, REFUSALS_KEY
from core.models.request import Frozen

GLOBAL = "global"
PRIVATE = "private"


def scope_of(community: str | None) -> str:
    """Where something that happened here applies: this community, or private chats."""
    return community or PRIVATE


def describe_scope(scope: str) -> str:
    if scope == GLOBAL:
        return "everywhere"
    if scope == PRIVATE:
        return "in private chats with the bot"
    return f"in community {scope}"


class BanRecord(Frozen):
    """What BAN_KEY stores; the key itself holds the scope and the owner."""

    reason: str
    by: str
    until: float | None  # None: until lifted


class Ban(BanRecord):
    owner: str
    scope: str

    def describe(self, here: str | None = None) -> str:
        where = "here" if self.scope == here else describe_scope(self.scope)
        text = f"Banned {where}" + (" automatically" if self.by == "system" else "")
        if self.until:
            text += f" for {format_duration(self.until - time.time())} more"
        return text + f" ({self.reason or 'no reason given'})"


class BanList:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def ban(
        self, owner: str, reason: str, by: str, duration_s: float | None = None, scope: str | None = None
    ) -> Ban:
        """Ban in one scope: a community key, PRIVATE, or everywhere (GLOBAL, the default)."""
        scope = scope or GLOBAL
        until = time.time() + duration_s if duration_s else None
        record = BanRecord(reason=reason, by=by, until=until)
        key = BAN_KEY.format(scope=scope, owner=owner)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(key, record.model_dump_json(), ex=int(duration_s) if duration_s else None)
            pipe.sadd(BANS_OF_KEY.format(owner=owner), scope)
            await pipe.execute()
        return Ban(owner=owner, scope=scope, **record.model_dump())

    async def unban(self, owner: str, scope: str | None = None) -> bool:
        scope = scope or GLOBAL
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(BAN_KEY.format(scope=scope, owner=owner))
            pipe.srem(BANS_OF_KEY.format(owner=owner), scope)
            lifted, _ = await pipe.execute()
        return bool(lifted)

    async def _load(self, owner: str, scope: str) -> Ban | None:
        raw = await self.redis.get(BAN_KEY.format(scope=scope, owner=owner))
        return (
            None
            if raw is None
            else Ban(owner=owner, scope=scope, **BanRecord.model_validate_json(raw).model_dump())
        )

    async def get(self, owner: str, community: str | None = None) -> Ban | None:
        """The ban that applies to the user here: everywhere, or in this community (or in private chats)."""
        scopes = (GLOBAL, scope_of(community))
        found = await self.redis.mget([BAN_KEY.format(scope=scope, owner=owner) for scope in scopes])
        for scope, raw in zip(scopes, found, strict=True):
            if raw is not None:
                return Ban(owner=owner, scope=scope, **BanRecord.model_validate_json(raw).model_dump())
        return None

    async def active(self, owner: str) -> list[Ban]:
        """Every ban the user is under now, wherever it applies (expired ones are dropped from the index)."""
        index = BANS_OF_KEY.format(owner=owner)
        bans = []
        for raw in sorted(await self.redis.smembers(index)):  # type: ignore[misc]
            scope = raw.decode() if isinstance(raw, bytes) else str(raw)
            ban = await self._load(owner, scope)
            if ban is None:
                await self.redis.srem(index, scope)  # type: ignore[misc]
            else:
                bans.append(ban)
        return bans

    async def check(self, owner: str, community: str | None = None) -> None:
        """Raise NotAllowed with one clear sentence when the user is banned here."""
        ban = await self.get(owner, community)
        if ban is None:
            return
        text = "You've been banned from using this bot"
        if ban.scope == PRIVATE:
            text += " in private chats"
        if ban.reason:
            text += f" ({ban.reason})"
        if ban.until:
            text += f"; it ends in {format_duration(ban.until - time.time())}"
        who = "the bot's owners" if ban.scope in (PRIVATE, GLOBAL) else "a moderator"
        raise NotAllowed(text + f". If you think this is a mistake, please ask {who}.")

    async def count_refusal(self, owner: str, window_s: int, scope: str = PRIVATE) -> int:
        """Count a refused prompt in this scope within a sliding window; returns the count in the window."""
        key = REFUSALS_KEY.format(scope=scope, owner=owner)
        now = time.time()
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zadd(key, {f"{now:.6f}": now})
            pipe.zremrangebyscore(key, 0, now - window_s)
            pipe.zcard(key)
            pipe.expire(key, window_s)
            _, _, count, _ = await pipe.execute()
        return int(count)

    async def clear_refusals(self, owner: str, scope: str = PRIVATE) -> None:
        await self.redis.delete(REFUSALS_KEY.format(scope=scope, owner=owner))
