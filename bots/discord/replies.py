"""Answering an interaction: acknowledge within Discord's 3 s, act, show what came of it, and show errors.

`respond` is the shape of every answer that queues work or shows an image: defer with "thinking…", run one
core call with the reply target (requester.reply_target), then show its outcome in the same reply. `send_error`
is the one place where exceptions become what the user reads (core.commands.messages.error_message): always
ephemeral, so a mistake is seen only by the person who made it.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import discord

from bots.discord.context import context_of
from bots.discord.location import InteractionTokens
from bots.discord.requester import reply_target
from core.commands.messages import error_message, queued_message
from core.jobs.queue import Submission

log = logging.getLogger(__name__)

NO_MENTIONS = discord.AllowedMentions.none()  # prompts are echoed: they must never ping anyone
T = TypeVar("T")
Act = Callable[[dict[str, str]], Awaitable[T]]  # reply_to → what core did
Show = Callable[[T], Awaitable[None]]


def mention_only(user_id: str) -> discord.AllowedMentions:
    """Mentions that ping the requester (by id) and nobody else, whatever the text around them says."""
    users = [discord.Object(int(user_id))] if user_id.isdigit() else False
    return discord.AllowedMentions(everyone=False, roles=False, users=users, replied_user=False)


async def send_error(
    interaction: discord.Interaction, exc: BaseException, request_id: str | None = None
) -> None:
    """Tell the user what went wrong, ephemerally, whatever state the interaction is in."""
    text = error_message(exc, request_id)
    response = interaction.response
    try:
        if not response.is_done():
            await response.send_message(text, ephemeral=True, allowed_mentions=NO_MENTIONS)
            return
        if response.type is discord.InteractionResponseType.deferred_channel_message:
            # A public "thinking…" reply would stay forever: replace it with an ephemeral notice.
            with contextlib.suppress(discord.NotFound):
                await interaction.delete_original_response()
        await interaction.followup.send(text, ephemeral=True, allowed_mentions=NO_MENTIONS)
    except discord.HTTPException:
        log.warning(
            "could not tell user %s about an error (interaction %s)",
            interaction.user.id,
            interaction.id,
            exc_info=True,
        )


async def acknowledge(interaction: discord.Interaction, *, ephemeral: bool = False) -> int | None:
    """Defer with "thinking…" at once, and keep the interaction's token for as long as it lives (delivery
    edits the reply with it); returns the id of the reply message that later edits replace."""
    callback = await interaction.response.defer(thinking=True, ephemeral=ephemeral)
    await InteractionTokens(context_of(interaction).redis).keep(interaction)
    if callback is not None and callback.message_id is not None:
        return callback.message_id
    try:
        return (await interaction.original_response()).id
    except discord.HTTPException:
        return None  # delivery then posts to the channel


async def respond(
    interaction: discord.Interaction, act: Act[T], show: Show[T], *, ephemeral: bool = False
) -> None:
    """Acknowledge, run `act(reply_to)` against core, then `show` its outcome in the reply.

    A queued request's result arrives later from the event stream and edits the same reply
    (bots.discord.delivery), after the edit made here has landed (context.acks).
    """
    context = context_of(interaction)
    message_id = await acknowledge(interaction, ephemeral=ephemeral)
    key = str(interaction.id)
    context.acks.begin(key)
    try:
        outcome = await act(reply_target(interaction, message_id, ephemeral=ephemeral))
    except Exception as exc:
        context.acks.end(key)
        await send_error(interaction, exc)
        return
    try:
        await show(outcome)
    except Exception as exc:
        log.warning("interaction %s: could not show its outcome", interaction.id, exc_info=True)
        await send_error(interaction, exc)
    finally:
        context.acks.end(key)


async def show_queued(interaction: discord.Interaction, submission: Submission) -> None:
    """Edit the reply with the queue position (a failure only loses that line: the result still comes)."""
    log.info("request %s submitted from interaction %s", submission.request_id, interaction.id)
    try:
        await interaction.edit_original_response(
            content=queued_message(submission), allowed_mentions=NO_MENTIONS
        )
    except discord.HTTPException:
        log.warning("request %s: could not show the queue position", submission.request_id, exc_info=True)
