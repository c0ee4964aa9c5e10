"""Style presets for --style: the operator's (settings.styles) and each community's (/admin style, in Redis).

A preset is a prompt template with a {prompt} placeholder and a negative prompt. The service applies it to the
prompt and --no at submit time, before the prompt check reads the final text, and the request records the
preset's name. A community's moderators may add presets of their own, under names the operator hasn't used;
an unknown name is refused with the names that exist here.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError
from redis.asyncio import Redis

from core.commands.grammar import style_name
from core.errors import InvalidRequest
from core.governance.community import community_key
from core.keys import STYLES_KEY
from core.models.request import Requester
from core.settings import LimitsSettings, Settings, StylePreset

MAX_COMMUNITY_STYLES = 50


@dataclass(frozen=True)
class NamedStyle:
    name: str
    preset: StylePreset
    community: bool  # made by this community's moderators (else the operator's)

    def line(self) -> str:
        negative = f" · avoids: {self.preset.negative}" if self.preset.negative else ""
        origin = " (this community's)" if self.community else ""
        return f"{self.name}{origin}: {self.preset.template}{negative}"


def apply_style(preset: StylePreset, prompt: str, negative: str, limits: LimitsSettings) -> tuple[str, str]:
    """The prompt inside the template and the preset's negative added to the user's, refused when too long."""
    styled = " ".join(preset.template.replace("{prompt}", prompt).split())
    terms = [term for term in (negative, preset.negative) if term]
    styled_negative = ", ".join(terms)
    if len(styled) > limits.max_prompt_chars:
        raise InvalidRequest(
            "style",
            f"With that style the prompt is {len(styled)} characters; the limit is {limits.max_prompt_chars}. "
            "Please shorten your prompt.",
        )
    if len(styled_negative) > limits.max_negative_chars:
        raise InvalidRequest(
            "style",
            f"With that style --no is {len(styled_negative)} characters; the limit is "
            f"{limits.max_negative_chars}. Please shorten your --no.",
        )
    return styled, styled_negative


def _community(requester: Requester) -> str | None:
    if not requester.community_id:
        return None
    return community_key(requester.platform, requester.community_id)


class StyleBook:
    def __init__(self, redis: Redis, settings: Settings) -> None:
        self.redis = redis
        self.operator = settings.styles

    async def _stored(self, community: str | None) -> dict[str, StylePreset]:
        if community is None:
            return {}
        raw = await self.redis.hgetall(STYLES_KEY.format(community=community))  # type: ignore[misc]
        found = {}
        for name, value in raw.items():
            try:
                found[name.decode()] = StylePreset.model_validate_json(value)
            except ValidationError:
                continue  # written by an older version: unreadable presets are skipped, not fatal
        return found

    async def all(self, requester: Requester) -> list[NamedStyle]:
        """The presets `requester` may use where they are: the operator's, then their community's."""
        styles = [NamedStyle(name, preset, False) for name, preset in sorted(self.operator.items())]
        community = await self._stored(_community(requester))
        styles += [NamedStyle(name, community[name], True) for name in sorted(community)]
        return styles

    async def get(self, name: str, requester: Requester) -> StylePreset:
        if name in self.operator:
            return self.operator[name]
        community = await self._stored(_community(requester))
        if name in community:
            return community[name]
        names = [style.name for style in await self.all(requester)]
        listed = ", ".join(names) if names else "none are set up here yet"
        raise InvalidRequest("style", f"There is no style “{name}”. Styles here: {listed}.")

    async def add(self, community: str, name_text: str, template: str, negative: str) -> str:
        """Store a community's preset; returns its name. Refuses bad names, operator names, bad templates."""
        name = style_name(name_text)
        if name is None:
            raise InvalidRequest(
                "style", f"“{name_text}” can't be a style name: use letters, digits, - or _ (up to 32)."
            )
        if name in self.operator:
            raise InvalidRequest("style", f"“{name}” is one of the bot's own styles; pick another name.")
        try:
            preset = StylePreset(template=template, negative=negative)
        except ValidationError:
            raise InvalidRequest(
                "style",
                "A style's template must say where the prompt goes with {prompt} (up to 500 characters), "
                "for example: /admin style add ink ink drawing of {prompt}, cross-hatching --no colour",
            ) from None
        key = STYLES_KEY.format(community=community)
        if not await self.redis.hexists(key, name) and await self.redis.hlen(key) >= MAX_COMMUNITY_STYLES:  # type: ignore[misc]
            raise InvalidRequest(
                "style", f"This community has {MAX_COMMUNITY_STYLES} styles already; remove one first."
            )
        await self.redis.hset(key, name, preset.model_dump_json())  # type: ignore[misc]
        return name

    async def remove(self, community: str, name: str) -> bool:
        removed = await self.redis.hdel(STYLES_KEY.format(community=community), name.lower())  # type: ignore[misc]
        return bool(removed)
