"""A community's own rules (a Discord guild or a Telegram group), set by its admins from the chat."""

from __future__ import annotations

from typing import Literal

from redis.asyncio import Redis

from core.errors import InvalidRequest
from core.keys import PAUSED_KEY, POLICY_KEY
from core.models.catalog import get_model
from core.models.policy import NsfwPolicy
from core.models.request import Frozen

__all__ = ["CommunityPolicy", "CommunityStore", "NsfwPolicy", "community_key"]


class CommunityPolicy(Frozen):
    """Stored as JSON under POLICY_KEY (the field names are the stored ones)."""

    nsfw: NsfwPolicy | None = (
        None  # None: the bot's setting; spoiler/allow apply only in age-restricted channels
    )
    buttons: Literal["owner", "everyone"] = "owner"  # who may press a result's buttons
    default_model: str | None = None
    log_channel: str | None = None  # chat/channel id where moderators get notices (automatic bans)
    denied_loras: tuple[str, ...] = ()  # LoRAs of the bot's catalog the community's moderators turned off


def community_key(platform: str, community_id: str) -> str:
    return f"{platform}:{community_id}"


class CommunityStore:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def policy(self, community: str | None) -> CommunityPolicy:
        if community is None:
            return CommunityPolicy()
        raw = await self.redis.get(POLICY_KEY.format(community=community))
        return CommunityPolicy.model_validate_json(raw) if raw else CommunityPolicy()

    async def set_policy(self, community: str, name: str, value: str) -> CommunityPolicy:
        policy = await self.policy(community)
        value = value.strip() if name == "logchannel" else value.strip().lower()
        if name == "nsfw":
            choices = [*NsfwPolicy, "default"]
            if value not in choices:
                raise InvalidRequest("nsfw", f"The NSFW policy is one of: {', '.join(choices)}.")
            policy = policy.model_copy(update={"nsfw": None if value == "default" else NsfwPolicy(value)})
        elif name == "buttons":
            if value not in ("owner", "everyone"):
                raise InvalidRequest("buttons", "Who may press buttons: owner or everyone.")
            policy = policy.model_copy(update={"buttons": value})
        elif name == "model":
            policy = policy.model_copy(
                update={"default_model": None if value == "default" else get_model(value).name}
            )
        elif name == "logchannel":
            policy = policy.model_copy(update={"log_channel": None if value in ("off", "none") else value})
        else:
            raise InvalidRequest("policy", "Policies you can set: nsfw, buttons, model, logchannel.")
        await self._save(community, policy)
        return policy

    async def set_lora(self, community: str, name: str, allowed: bool) -> CommunityPolicy:
        """Turn one LoRA off (or back on) for a community."""
        policy = await self.policy(community)
        denied = set(policy.denied_loras)
        if allowed:
            denied.discard(name)
        else:
            denied.add(name)
        policy = policy.model_copy(update={"denied_loras": tuple(sorted(denied))})
        await self._save(community, policy)
        return policy

    async def _save(self, community: str, policy: CommunityPolicy) -> None:
        # A community that turned no LoRA off writes the record the previous version reads (it forbids
        # unknown fields), so a rolling upgrade doesn't break its processes still running the old code.
        exclude = None if policy.denied_loras else {"denied_loras"}
        await self.redis.set(POLICY_KEY.format(community=community), policy.model_dump_json(exclude=exclude))

    async def pause(self, community: str, paused: bool) -> None:
        key = PAUSED_KEY.format(community=community)
        if paused:
            await self.redis.set(key, "1")
        else:
            await self.redis.delete(key)

    async def is_paused(self, community: str | None) -> bool:
        return community is not None and bool(await self.redis.exists(PAUSED_KEY.format(community=community)))
