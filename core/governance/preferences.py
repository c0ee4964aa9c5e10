"""Per-user defaults set with /settings, stored in Redis: aspect ratio, model, image count, reply privacy,
Remix (edit the prompt before a variation, reroll, zoom, pan or region edit) and live previews (a small
picture of the render as it forms; off: the progress is text only)."""

from __future__ import annotations

from redis.asyncio import Redis

from core.commands.grammar import UserDefaults
from core.errors import InvalidRequest
from core.keys import PREFS_KEY
from core.models.catalog import get_model
from core.models.request import Frozen

ASPECTS = ("1:1", "4:3", "3:4", "16:9", "9:16", "3:2", "2:3")


class UserPrefs(Frozen):
    """Stored as JSON under PREFS_KEY (the field names are the stored ones)."""

    aspect: str | None = None
    model: str | None = None
    n: int | None = None
    private: bool = False  # replies only the user sees (Discord ephemeral; Telegram: in a private chat)
    remix: bool = False  # V, 🔄, zoom, pan and region edits first open the prompt for editing
    previews: bool = True  # live previews in the progress (when the operator's worker makes them)

    def defaults(self) -> UserDefaults:
        return UserDefaults(aspect=self.aspect, model=self.model, n=self.n)


# Fields added after the first stored records, with the default value that is not stored.
DEFAULTS_LEFT_OUT: dict[str, object] = {"remix": False, "previews": True}


class PreferenceStore:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def get(self, platform: str, user_id: str) -> UserPrefs:
        raw = await self.redis.get(PREFS_KEY.format(platform=platform, user_id=user_id))
        return UserPrefs.model_validate_json(raw) if raw else UserPrefs()

    async def update(self, platform: str, user_id: str, **changes: object) -> UserPrefs:
        """Validate and store changes (None resets a field to the bot's default)."""
        current = await self.get(platform, user_id)
        prefs = UserPrefs.model_validate({**current.model_dump(), **changes})
        if prefs.aspect is not None and prefs.aspect not in ASPECTS:
            raise InvalidRequest("aspect", f"Choose an aspect ratio from {', '.join(ASPECTS)}.")
        if prefs.model is not None:
            prefs = prefs.model_copy(update={"model": get_model(prefs.model).name})
        if prefs.n is not None and not 1 <= prefs.n <= 4:
            raise InvalidRequest("n", "The number of images must be from 1 to 4.")
        # Remix off and previews on (the defaults) write the record the previous version reads (it forbids
        # unknown fields), so a rolling upgrade doesn't break its processes still running the old code.
        exclude = {name for name, default in DEFAULTS_LEFT_OUT.items() if getattr(prefs, name) == default}
        await self.redis.set(
            PREFS_KEY.format(platform=platform, user_id=user_id), prefs.model_dump_json(exclude=exclude)
        )
        return prefs
