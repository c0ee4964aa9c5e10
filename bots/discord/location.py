"""Where a reply is on Discord, and how to reach it: the channel and message, and the interaction webhook while
its token lives.

A location (also the shape of a request's reply_to) is a flat mapping of strings:

    {"channel_id", "message_id"}                                     always
    {"application_id", "interaction_id", "created_at"}               also, when the message belongs to an
                                                                     interaction (its edited original response
                                                                     or a follow-up)

An interaction's token is a credential (whoever holds it can post as the bot in that channel for 15 minutes),
so it is never part of a location: it lives under its own key (core.keys.DISCORD_TOKEN_KEY) only as long
as Discord honours it, and `reply_webhook` looks it up. Locations go to core's DeliveryLog so that
`/admin delete` removes the messages; removal goes through the interaction webhook while the token lives (the
only way to delete an ephemeral reply), and otherwise through the channel with the bot token (the bot is the
author of what it posted).
"""

from __future__ import annotations

import logging
import time

import discord
from redis.asyncio import Redis
from redis.exceptions import RedisError

from bots.discord.context import BotContext
from core.keys import DISCORD_TOKEN_KEY

log = logging.getLogger(__name__)

TOKEN_TTL_S = 15 * 60  # Discord honours an interaction's token for 15 minutes after the interaction


class InteractionTokens:
    """Interaction tokens, each under its own key until it expires, so no stored request, result or cache
    entry ever holds one."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def keep(self, interaction: discord.Interaction) -> None:
        left = int(TOKEN_TTL_S - (time.time() - interaction.created_at.timestamp()))
        if left > 0:
            key = DISCORD_TOKEN_KEY.format(interaction_id=interaction.id)
            await self.redis.set(key, interaction.token, ex=left)

    async def get(self, interaction_id: str) -> str | None:
        token = await self.redis.get(DISCORD_TOKEN_KEY.format(interaction_id=interaction_id))
        return token.decode() if isinstance(token, bytes) else token


def location(
    channel_id: int | str,
    message_id: int | str,
    *,
    application_id: int | str | None = None,
    interaction_id: int | str | None = None,
    created_at: float | str | None = None,
) -> dict[str, str]:
    where = {"channel_id": str(channel_id), "message_id": str(message_id)}
    if application_id is not None and interaction_id is not None:
        where |= {
            "application_id": str(application_id),
            "interaction_id": str(interaction_id),
            "created_at": str(created_at if created_at is not None else time.time()),
        }
    return where


async def reply_webhook(
    client: discord.Client, context: BotContext, where: dict[str, str]
) -> discord.Webhook | None:
    """The interaction webhook that can edit or delete the message at `where`, while its token lives."""
    if "application_id" not in where or "interaction_id" not in where:
        return None
    if time.time() - float(where.get("created_at") or 0) > context.token_lifetime_s:
        return None
    token = await InteractionTokens(context.redis).get(where["interaction_id"])
    if token is None:
        return None
    return discord.Webhook.partial(int(where["application_id"]), token, client=client)


async def remember(context: BotContext, request_id: str, where: dict[str, str]) -> None:
    """Record a delivery. The message is already posted, so a failure here is logged, not raised (raising
    would make the event consumer deliver the result a second time)."""
    try:
        await context.deliveries.record(request_id, where)
    except RedisError:
        log.warning("request %s: could not record where it was delivered", request_id, exc_info=True)


async def remove(client: discord.Client, context: BotContext, where: dict[str, str]) -> bool:
    """Delete a posted message; True when it is gone (already deleted counts), False when Discord refused."""
    try:
        webhook = await reply_webhook(client, context, where)
        if webhook is not None:
            await webhook.delete_message(int(where["message_id"]))
        else:
            channel = client.get_partial_messageable(int(where["channel_id"]))
            await channel.get_partial_message(int(where["message_id"])).delete()
    except discord.NotFound:
        return True
    except (discord.HTTPException, KeyError, ValueError):
        log.warning("could not delete message %s", where.get("message_id"), exc_info=True)
        return False
    return True
