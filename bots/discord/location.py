"""Where a result was posted on Discord, kept in core's DeliveryLog so that `/admin delete` removes it.

A location is a flat mapping of strings:

    {"channel_id", "message_id"}                                     always
    {"application_id", "interaction_token", "created_at"}            also, when the message belongs to an
                                                                     interaction (its edited original response
                                                                     or a follow-up)

Removal goes through the interaction webhook while its token lives (the only way to delete an ephemeral
reply), and otherwise through the channel with the bot token (the bot is the author of what it posted).
"""

from __future__ import annotations

import logging
import time

import discord
from redis.exceptions import RedisError

from bots.discord.context import BotContext

log = logging.getLogger(__name__)


def location(
    channel_id: int | str,
    message_id: int | str,
    *,
    application_id: int | str | None = None,
    token: str | None = None,
    created_at: float | str | None = None,
) -> dict[str, str]:
    where = {"channel_id": str(channel_id), "message_id": str(message_id)}
    if application_id is not None and token is not None:
        where |= {
            "application_id": str(application_id),
            "interaction_token": token,
            "created_at": str(created_at if created_at is not None else time.time()),
        }
    return where


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
        token = where.get("interaction_token")
        fresh = time.time() - float(where.get("created_at") or 0) < context.token_lifetime_s
        if token and where.get("application_id") and fresh:
            webhook = discord.Webhook.partial(int(where["application_id"]), token, client=client)
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
