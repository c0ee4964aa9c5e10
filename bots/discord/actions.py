"""What a button press does. Only the requester may press, unless the server's policy lets everyone (core
decides: service.check_owner / service.image); others get an ephemeral notice and no job.

U<i> shows image i at full size as a follow-up (no job); V<i>, 🔄 and the buttons under a single image queue a
new request whose reply is a new message, delivered like a command's.
"""

from __future__ import annotations

import logging
import time

import discord

from bots.discord.context import context_of
from bots.discord.location import location, remember
from bots.discord.picture import picture
from bots.discord.replies import send_error, submit_and_show
from bots.discord.requester import requester_of
from bots.discord.views import button_view, is_public_url
from core import constants as c
from core.commands.buttons import Button, press_source_id, single_buttons
from core.errors import InvalidRequest
from core.jobs.queue import Submission
from core.models.request import Requester
from core.models.result import StoredImage

log = logging.getLogger(__name__)


async def press(interaction: discord.Interaction, button: Button) -> None:
    context = context_of(interaction)
    requester = requester_of(interaction)
    try:
        if button.action == c.ACTION_UPSCALE:
            index = button.index if button.index is not None else 0
            image = await context.service.image(button.request_id, index, requester)
            await _full_size(interaction, button.request_id, index, image)
            return
        # Before acknowledging, so a refusal is one ephemeral notice and no public "thinking…".
        await context.service.check_owner(button.request_id, requester)
    except Exception as exc:
        await send_error(interaction, exc, button.request_id)
        return
    source_id = press_source_id(button.encode(), requester.user_id, time.time())

    async def submit(reply_to: dict[str, str]) -> Submission:
        return await _queue(interaction, button, requester, source_id, reply_to)

    await submit_and_show(interaction, submit)


async def _queue(
    interaction: discord.Interaction,
    button: Button,
    requester: Requester,
    source_id: str,
    reply_to: dict[str, str],
) -> Submission:
    service = context_of(interaction).service
    index = button.index if button.index is not None else 0
    if button.action in (c.ACTION_VARY, c.ACTION_VARY_STRONG, c.ACTION_VARY_SUBTLE):
        return await service.vary(
            button.request_id,
            index,
            requester,
            strong=button.action != c.ACTION_VARY_SUBTLE,
            source_id=source_id,
            reply_to=reply_to,
        )
    if button.action == c.ACTION_UPSCALE_2X:
        return await service.upscale(
            button.request_id, index, requester, source_id=source_id, reply_to=reply_to
        )
    if button.action == c.ACTION_REROLL:
        return await service.reroll(button.request_id, requester, source_id=source_id, reply_to=reply_to)
    raise InvalidRequest("button", "That button isn't one I know; please run /imagine again.")


async def _full_size(
    interaction: discord.Interaction, request_id: str, index: int, image: StoredImage
) -> None:
    """U<i>: image i of a finished grid as a follow-up message, with the buttons for one image."""
    context = context_of(interaction)
    await interaction.response.defer()
    shown = await picture(
        context.service.store,
        [image],
        interaction.filesize_limit,
        stem=f"{request_id}-{index + 1}",
        spoiler=image.spoiler,
    )
    text = f"Image {index + 1} · {image.width}×{image.height} · seed {image.seed}"
    if shown.note:
        text += "\n" + shown.note
    view = button_view(single_buttons(request_id, index), image.url if is_public_url(image.url) else None)
    missing = discord.utils.MISSING
    message = await interaction.followup.send(
        text, view=view, file=shown.file or missing, embed=shown.embed or missing, wait=True
    )
    where = location(
        message.channel.id,
        message.id,
        application_id=interaction.application_id,
        token=interaction.token,
        created_at=interaction.created_at.timestamp(),
    )
    await remember(context, request_id, where)
