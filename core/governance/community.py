"""A community's own rules (a Discord guild or a Telegram group), set by its admins from the chat."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from typing import Literal

from redis.asyncio import Redis

from core import constants as c
from core.errors import InvalidRequest
from core.models.catalog import get_model

POLICY_KEY = f"{c.KEY_PREFIX}:policy:{{community}}"  # community = "platform:community_id"
PAUSED_KEY = f"{c.KEY_PREFIX}:paused:{{community}}"

NsfwPolicy = Literal["refuse", "spoiler", "allow"]


@dataclass(frozen=True)
class CommunityPolicy:
    nsfw: NsfwPolicy | None = (
        None  # None: the bot's setting; spoiler/allow apply only in age-restricted channels
    )
    buttons: Literal["owner", "everyone"] = "owner"  # who may press a result's buttons
    default_model: str | None = None
    log_channel: str | None = None  # chat/channel id where moderators get notices (automatic bans)


def community_key(platform: str, community_id: str) -> str:
    return f"{platform}:{community_id}"


class CommunityStore:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def policy(self, community: str | None) -> CommunityPolicy:
        if community is None:
            return CommunityPolicy()
        raw = await self.redis.get(POLICY_KEY.format(community=community))
        return CommunityPolicy(**json.loads(raw)) if raw else CommunityPolicy()

    async def set_policy(self, community: str, name: str, value: str) -> CommunityPolicy:
        policy = await self.policy(community)
        value = value.strip() if name == "logchannel" else value.strip().lower()
        if name == "nsfw":
            if value not in ("refuse", "spoiler", "allow", "default"):
                raise InvalidRequest("nsfw", "The NSFW policy is one of: refuse, spoiler, allow, default.")
            policy = replace(policy, nsfw=None if value == "default" else value)  # type: ignore[arg-type]
        elif name == "buttons":
            if value not in ("owner", "everyone"):
                raise InvalidRequest("buttons", "Who may press buttons: owner or everyone.")
            policy = replace(policy, buttons=value)  # type: ignore[arg-type]
        elif name == "model":
            policy = replace(policy, default_model=None if value == "default" else get_model(value).name)
        elif name == "logchannel":
            policy = replace(policy, log_channel=None if value in ("off", "none") else value)
        else:
            raise InvalidRequest("policy", "Policies you can set: nsfw, buttons, model, logchannel.")
        await self.redis.set(POLICY_KEY.format(community=community), json.dumps(asdict(policy)))
        return policy

    async def pause(self, community: str, paused: bool) -> None:
        key = PAUSED_KEY.format(community=community)
        if paused:
            await self.redis.set(key, "1")
        else:
            await self.redis.delete(key)

    async def is_paused(self, community: str | None) -> bool:
        return community is not None and bool(await self.redis.exists(PAUSED_KEY.format(community=community)))
