"""/styles, /history, /info, /describe, "Describe this image", "How was this made?" and /admin check and style on
Discord, and how the library's buttons answer (ⓘ, 🗑, Show, ◀ ▶) — one core call each.

/describe takes an image attachment (checked by its declared type and size before anything is downloaded or
charged) or runs from the context menu on a message with a picture; on one of the bot's results it describes
the result's own first image. Replies to /styles, /history and /info are ephemeral: they are the asker's own.
"""

from __future__ import annotations

import logging
from typing import Any

import discord
from discord import app_commands

from bots.discord.buttons import history_view
from bots.discord.context import context_of
from bots.discord.replies import NO_MENTIONS, respond, show_queued
from bots.discord.requester import requester_of
from core.commands.buttons import decode_button
from core.commands.links import with_gallery_link
from core.commands.uploads import UPLOAD_MAX_BYTES
from core.errors import InvalidRequest
from core.jobs.queue import Submission

log = logging.getLogger(__name__)

MESSAGE_LIMIT = 2000
DESCRIBE_MENU = "Describe this image"
INFO_MENU = "How was this made?"
NOT_A_PICTURE = "Please attach a picture (PNG, JPEG or WebP) to describe."
NO_PICTURE = "That message has no picture to describe; pick a message with an image."
NO_RESULT = "That message isn't one of my results; use /info with a request id."


def _clip(text: str) -> str:
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 1] + "…"


def _check_attachment(attachment: discord.Attachment) -> None:
    is_image = (attachment.content_type or "").startswith("image/") or attachment.filename.lower().endswith(
        (".png", ".jpg", ".jpeg", ".webp")
    )
    if not is_image:
        raise InvalidRequest("image", NOT_A_PICTURE)
    if attachment.size > UPLOAD_MAX_BYTES:
        raise InvalidRequest(
            "image",
            f"That file is {attachment.size / 1e6:.1f} MB; please attach one under {UPLOAD_MAX_BYTES // 1_000_000} MB.",
        )


def result_of(message: discord.Message) -> str | None:
    """The request behind one of the bot's results, from its buttons' custom ids."""
    for row in message.components:
        for component in getattr(row, "children", []):
            custom_id = getattr(component, "custom_id", None)
            if custom_id:
                try:
                    return decode_button(custom_id).request_id
                except InvalidRequest:
                    continue
    return None


@app_commands.command(name="styles", description="The --style presets you can use here (only you see this)")
async def styles(interaction: discord.Interaction) -> None:
    found = await context_of(interaction).service.list_styles(requester_of(interaction))
    text = (
        "Styles (use one with --style <name>):\n" + "\n".join(style.line() for style in found)
        if found
        else "No styles are set up here yet. Moderators add them with /admin style add."
    )
    await interaction.response.send_message(_clip(text), ephemeral=True, allowed_mentions=NO_MENTIONS)


@app_commands.command(name="history", description="Your recent results (only you see this)")
async def history(interaction: discord.Interaction) -> None:
    context, requester = context_of(interaction), requester_of(interaction)
    found = await context.service.history(requester)
    view = history_view(found)
    await interaction.response.send_message(
        _clip(with_gallery_link(found.text(), context.settings, requester, private=True)),  # ephemeral
        view=view or discord.utils.MISSING,
        ephemeral=True,
        allowed_mentions=NO_MENTIONS,
    )


@app_commands.command(name="info", description="How a result was made, and what its file says it is")
@app_commands.describe(request="The result's request id")
async def info(interaction: discord.Interaction, request: str) -> None:
    await _info(interaction, request.strip())


@app_commands.context_menu(name=INFO_MENU)
async def info_menu(interaction: discord.Interaction, message: discord.Message) -> None:
    request_id = result_of(message)
    if request_id is None:
        raise InvalidRequest("info", NO_RESULT)
    await _info(interaction, request_id)


async def _info(interaction: discord.Interaction, request_id: str) -> None:
    await interaction.response.defer(
        ephemeral=True, thinking=True
    )  # reading the file's manifest takes a moment
    found = await context_of(interaction).service.info(request_id, requester_of(interaction))
    await interaction.edit_original_response(content=_clip(found.text()), allowed_mentions=NO_MENTIONS)


@app_commands.command(
    name="describe", description="Four prompts for a picture, each a button that imagines it"
)
@app_commands.describe(image="The picture to describe")
async def describe(interaction: discord.Interaction, image: discord.Attachment) -> None:
    _check_attachment(image)
    await _describe(interaction, image=image)


@app_commands.context_menu(name=DESCRIBE_MENU)
async def describe_menu(interaction: discord.Interaction, message: discord.Message) -> None:
    request_id = result_of(message) if message.author == interaction.client.user else None
    if request_id is not None:
        await _describe(interaction, result_id=request_id)
        return
    pictures = [a for a in message.attachments if (a.content_type or "").startswith("image/")]
    if not pictures:
        raise InvalidRequest("image", NO_PICTURE)
    _check_attachment(pictures[0])
    await _describe(interaction, image=pictures[0])


async def _describe(
    interaction: discord.Interaction, *, image: discord.Attachment | None = None, result_id: str | None = None
) -> None:
    context = context_of(interaction)
    requester = requester_of(interaction)
    prefs = await context.preferences.get("discord", str(interaction.user.id))

    async def act(reply_to: dict[str, str]) -> Submission:
        source_id = f"interaction:{interaction.id}"
        if result_id is not None:
            result = await context.service.result(result_id)
            index = result.shown_indices[0] if result.images else 0
            return await context.service.describe(
                requester, result_id=result_id, index=index, source_id=source_id, reply_to=reply_to
            )
        assert image is not None
        return await context.service.describe(
            requester, image=image.read, source_id=source_id, reply_to=reply_to
        )

    async def show(submission: Submission) -> None:
        await show_queued(interaction, submission)

    await respond(interaction, act, show, ephemeral=prefs.private)


COMMANDS: tuple[app_commands.Command[Any, Any, None] | app_commands.ContextMenu, ...] = (
    styles,
    history,
    info,
    describe,
    info_menu,
    describe_menu,
)
