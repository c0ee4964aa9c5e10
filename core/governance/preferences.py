"""Per-user defaults set with /settings, stored in Redis: aspect ratio, model, image count, reply privacy."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace

from redis.asyncio import Redis

from core import constants as c
from core.commands.grammar import UserDefaults
from core.errors import InvalidRequest
from core.models.catalog import get_model

PREFS_KEY = f"{c.KEY_PREFIX}:prefs:{{platform}}:{{user_id}}"
ASPECTS = ("1:1", "4:3", "3:4", "16:9", "9:16", "3:2", "2:3")


@dataclass(frozen=True)
class UserPrefs:
    aspect: str | None = None
    model: str | None = None
    n: int | None = None
    private: bool = False  # replies only the user sees (Discord ephemeral; Telegram: in a private chat)

    def defaults(self) -> UserDefaults:
        return UserDefaults(aspect=self.aspect, model=self.model, n=self.n)


class PreferenceStore:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def get(self, platform: str, user_id: str) -> UserPrefs:
        raw = await self.redis.get(PREFS_KEY.format(platform=platform, user_id=user_id))
        return UserPrefs(**json.loads(raw)) if raw else UserPrefs()

    async def update(self, platform: str, user_id: str, **changes: object) -> UserPrefs:
        """Validate and store changes (None resets a field to the bot's default)."""
        prefs = replace(await self.get(platform, user_id), **changes)  # type: ignore[arg-type]
        if prefs.aspect is not None and prefs.aspect not in ASPECTS:
            raise InvalidRequest("aspect", f"Choose an aspect ratio from {', '.join(ASPECTS)}.")
        if prefs.model is not None:
            prefs = replace(prefs, model=get_model(prefs.model).name)
        if prefs.n is not None and not 1 <= prefs.n <= 4:
            raise InvalidRequest("n", "The number of images must be from 1 to 4.")
        await self.redis.set(PREFS_KEY.format(platform=platform, user_id=user_id), json.dumps(asdict(prefs)))
        return prefs
