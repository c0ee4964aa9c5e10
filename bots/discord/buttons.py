"""The buttons under a result, and what a press does.

A custom_id is core's id ("ib:v:<request id>:2", at most 24 characters): it carries all the state, and the
template below routes any such id to `CoreButton` (a DynamicItem) with no in-memory view, so buttons work on
old messages and after restarts.

A press is decode → check → press → render, with no per-action branching here:
- decode: `CoreButton.from_custom_id` parses the id with core's `decode_button`;
- check: core says whether the presser may use the result's buttons (service.check_owner: its owner, or anyone
  where the community allows), before anything is shown, so a refusal is one ephemeral notice and no job;
- press: core's one dispatch, `ImagineService.press`, does what the button stands for;
- render: what came back is either a finished image (U<i>: shown at full size in the reply, with the buttons
  for one image) or a queued request (V<i>, 🔄 and the buttons under one image: the reply shows its queue
  position, and its result later edits the same reply, delivered like a command's).

Some presses show or ask something first (core's `prepare`, asked before anything is answered, since a modal
must be the first response): Vary (Region) opens the 3×3 picker as an ephemeral message whose squares are
CoreButtons too (a tap edits it in place); Remix, a region's own prompt and Custom Zoom open a modal (prefilled
with the prompt) whose submission presses the button again with the answer.

The answer to a press is private (ephemeral) when the pressed message was, or when the presser asked for
private replies (/settings): a private result's children never show up in the channel.

Every press is answered. discord.py runs a DynamicItem only for an id that matches its template, decodes and is
on the pressed message; the client hands every other component interaction (a garbled or forged id, an
image index out of range, an id the message does not carry) to `answer_unclaimed`, which says so ephemerally.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import discord

from bots.discord.context import context_of
from bots.discord.forget import is_forget_button
from bots.discord.location import location, remember, remove
from bots.discord.markup import button_view, full_size_url, is_public_url
from bots.discord.picture import picture
from bots.discord.replies import NO_MENTIONS, respond, send_error, show_queued
from bots.discord.requester import requester_of
from core import constants as c
from core.commands.buttons import (
    PREFIX,
    Button,
    button_label,
    decode_button,
    grid_buttons,
    history_buttons,
    library_buttons,
    single_buttons,
)
from core.commands.buttons import TEMPLATE as CORE_TEMPLATE
from core.commands.dialogs import Answer, Ask, Picker
from core.commands.links import with_gallery_link, with_region_link
from core.commands.messages import result_caption
from core.errors import InvalidRequest
from core.governance.library import History
from core.models.result import ResultEvent, StoredImage
from core.service import Pressed

log = logging.getLogger(__name__)

TEMPLATE = rf"{PREFIX}:{CORE_TEMPLATE}"
_TEMPLATE = re.compile(TEMPLATE)
CUSTOM_ID_LIMIT = 100
MESSAGE_LIMIT = 2000
UNKNOWN_BUTTON = "That button isn't one I know; please run /imagine again."

_STYLES = {
    c.ACTION_REROLL: discord.ButtonStyle.primary,
    c.ACTION_DELETE: discord.ButtonStyle.danger,
    c.ACTION_REGION_SUBMIT: discord.ButtonStyle.success,
    c.ACTION_REGION_PROMPT: discord.ButtonStyle.primary,
}
_PICKER_ACTIONS = (c.ACTION_VARY_REGION, c.ACTION_REGION_CELL, c.ACTION_REGION_SUBMIT, c.ACTION_REGION_PROMPT)
PROMPT_LIMIT = 1500
# Buttons whose own press checks who may use them (a /describe's suggestions name no generation request; /info
# is for anyone in the community), instead of check_owner beforehand.
_CHECKED_BY_PRESS = frozenset({c.ACTION_SUGGESTION, c.ACTION_INFO})


class CoreButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=TEMPLATE):
    def __init__(self, button: Button, row: int | None = None) -> None:
        custom_id = button.encode()
        if len(custom_id) > CUSTOM_ID_LIMIT:
            raise ValueError(f"button id {custom_id!r} is longer than Discord's {CUSTOM_ID_LIMIT} characters")
        super().__init__(
            discord.ui.Button(
                label=button_label(button),
                custom_id=custom_id,
                style=_STYLES.get(button.action, discord.ButtonStyle.secondary),
            ),
            row=row,
        )
        self.button = button

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> CoreButton:
        return cls(decode_button(match.group(0)))

    async def callback(self, interaction: discord.Interaction) -> None:
        await press(interaction, self.button)


def claimed(interaction: discord.Interaction) -> bool:
    """Whether a CoreButton handles this component interaction: the conditions under which discord.py
    dispatches a DynamicItem (template, the id on the pressed message) and core decodes the id."""
    custom_id = _custom_id(interaction)
    message = interaction.message
    if custom_id is not None and message is not None and is_forget_button(custom_id):
        return True  # /forget's own buttons (forget.py)
    if custom_id is None or message is None or _TEMPLATE.fullmatch(custom_id) is None:
        return False
    try:
        decode_button(custom_id)
    except InvalidRequest:
        return False
    return any(
        getattr(component, "custom_id", None) == custom_id
        for row in message.components
        for component in getattr(row, "children", [])
    )


def _custom_id(interaction: discord.Interaction) -> str | None:
    data: dict[str, Any] = dict(interaction.data or {})
    value = data.get("custom_id")
    return value if isinstance(value, str) else None


async def answer_unclaimed(interaction: discord.Interaction) -> None:
    """Answer a press no CoreButton takes, so no press is left spinning ("This interaction failed")."""
    if interaction.type is not discord.InteractionType.component or claimed(interaction):
        return
    custom_id = _custom_id(interaction) or ""
    log.info("interaction %s: a press of an unknown button id %r", interaction.id, custom_id[:100])
    await send_error(interaction, InvalidRequest("button", UNKNOWN_BUTTON))


def result_view(rows: list[list[Button]], link_url: str | None = None) -> discord.ui.View:
    """Core's button rows as CoreButtons (markup.py lays them out), plus a link to the original."""
    return button_view(rows, CoreButton, link_url)


async def press(interaction: discord.Interaction, button: Button, answer: Answer | None = None) -> None:
    context = context_of(interaction)
    requester = requester_of(interaction)
    try:
        if button.action not in _CHECKED_BY_PRESS:
            await context.service.check_owner(button.request_id, requester)
        step = await context.service.prepare(button, requester, answer)
        private = await _private(interaction, button)
    except Exception as exc:
        await send_error(interaction, exc, button.request_id)
        return
    if isinstance(step, Picker):
        await _show_picker(interaction, button, step)
        return
    if isinstance(step, Ask):
        if answer is not None:  # a modal asked it all at once: nothing is left to ask
            await send_error(interaction, InvalidRequest("button", "Please press the button again."))
            return
        await interaction.response.send_modal(edit_modal(step))
        return

    async def act(reply_to: dict[str, str]) -> Pressed:
        return await context.service.press(button, requester, reply_to=reply_to, answer=answer)

    async def render(pressed: Pressed) -> None:
        if await render_press(interaction, pressed):
            return
        if pressed.image is not None:
            await _show_image(interaction, pressed.button, pressed.image)
        elif pressed.submission is not None:
            await show_queued(interaction, pressed.submission)

    await respond(interaction, act, render, ephemeral=private)


async def _show_picker(interaction: discord.Interaction, button: Button, picker: Picker) -> None:
    """Vary (Region): the picker as an ephemeral message; a tap on one of its squares redraws it in place."""
    view = result_view(picker.rows)
    context, requester = context_of(interaction), requester_of(interaction)
    text = with_region_link(  # the picker is ephemeral: only the presser sees the link
        picker.text, context.settings, requester, picker.request_id, picker.index, private=True
    )
    if button.action == c.ACTION_VARY_REGION:
        await interaction.response.send_message(text, view=view, ephemeral=True, allowed_mentions=NO_MENTIONS)
    else:
        await interaction.response.edit_message(content=text, view=view)


MODAL_PREFIX = "ibm:"


def edit_modal(ask: Ask) -> discord.ui.Modal:
    """The questions of one press: the prompt to edit (prefilled) and/or a zoom factor.

    Stateless: its custom_id is the press's button id and its inputs are named "prompt" and "factor", so
    `answer_modal` finishes it from the submission alone (after a restart, too). It is stopped before it is
    sent, so discord.py keeps no copy of it."""
    modal = discord.ui.Modal(title=ask.title, custom_id=f"{MODAL_PREFIX}{ask.button.encode()}")
    if ask.wants_factor:
        modal.add_item(
            discord.ui.TextInput(
                label="Zoom out by (1.1–2.0)", placeholder="1.5", max_length=6, custom_id="factor"
            )
        )
    if ask.wants_prompt:
        modal.add_item(
            discord.ui.TextInput(
                label="Prompt",
                style=discord.TextStyle.paragraph,
                default=(ask.prompt or "")[:PROMPT_LIMIT],
                max_length=PROMPT_LIMIT,
                custom_id="prompt",
            )
        )
    modal.stop()
    return modal


def _submitted(components: Any) -> dict[str, str]:
    """The text inputs of a modal submission, by custom_id."""
    values: dict[str, str] = {}
    for row in components or []:
        for component in row.get("components") or [row.get("component") or row]:
            if isinstance(component, dict) and component.get("type") == 4:
                values[str(component.get("custom_id"))] = str(component.get("value") or "")
    return values


async def answer_modal(interaction: discord.Interaction) -> None:
    """A submitted `edit_modal`: the press it names, finished with what was typed."""
    data: dict[str, Any] = dict(interaction.data or {})
    custom_id = str(data.get("custom_id") or "")
    if not custom_id.startswith(MODAL_PREFIX):
        return
    try:
        button = decode_button(custom_id.removeprefix(MODAL_PREFIX))
    except InvalidRequest as exc:
        await send_error(interaction, exc)
        return
    values = _submitted(data.get("components"))
    await press(interaction, button, Answer(prompt=values.get("prompt"), factor=values.get("factor")))


async def _private(interaction: discord.Interaction, button: Button) -> bool:
    """Answer privately under a private result, or when the presser wants private replies. The region picker
    is always ephemeral (only the presser sees it), so its result is private only by preference."""
    message = interaction.message
    if message is not None and message.flags.ephemeral and button.action not in _PICKER_ACTIONS:
        return True
    prefs = await context_of(interaction).preferences.get("discord", str(interaction.user.id))
    return prefs.private


async def _show_image(interaction: discord.Interaction, button: Button, image: StoredImage) -> None:
    """One image of a finished grid at full size, in the reply, with the buttons for one image."""
    context = context_of(interaction)
    request_id = button.request_id
    index = image.index if image.index is not None else (button.index or 0)
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
    view = result_view(single_buttons(request_id, index), image.url if is_public_url(image.url) else None)
    message = await interaction.edit_original_response(
        content=text,
        attachments=[shown.file] if shown.file else [],
        embeds=[shown.embed] if shown.embed else [],
        view=view,
        allowed_mentions=NO_MENTIONS,
    )
    where = location(
        message.channel.id,
        message.id,
        application_id=interaction.application_id,
        interaction_id=interaction.id,
        created_at=interaction.created_at.timestamp(),
    )
    await remember(context, request_id, where)


def history_view(history: History) -> discord.ui.View | None:
    ids = [entry.request_id for entry in history.entries]
    if not ids:
        return None
    newer = ids[0] if history.page.has_newer else None
    older = ids[-1] if history.page.has_older else None
    return result_view(history_buttons(ids, newer, older))


# -- what the library's buttons show ------------------------------------------------------------------------------


async def render_press(interaction: discord.Interaction, pressed: Pressed) -> bool:
    """Show what ⓘ, 🗑, Show, ◀ and ▶ returned, in the press's reply; False when the press was none of those."""
    context = context_of(interaction)
    if pressed.info is not None:
        await interaction.edit_original_response(
            content=_clipped(pressed.info.text()), allowed_mentions=NO_MENTIONS
        )
    elif pressed.history is not None:
        view = history_view(pressed.history)
        text = with_gallery_link(
            pressed.history.text(), context.settings, requester_of(interaction), private=True
        )
        await interaction.edit_original_response(
            content=_clipped(text), view=view, allowed_mentions=NO_MENTIONS
        )
    elif pressed.deleted is not None:
        removed = 0
        for where in pressed.deleted.messages:
            removed += await remove(interaction.client, context, where)
        text = (
            f"Deleted {pressed.deleted.request_id}: its images are gone from storage and from your /history."
        )
        if pressed.deleted.messages:
            text += f" Removed {removed} of {len(pressed.deleted.messages)} message(s) showing it."
        await interaction.edit_original_response(content=text, allowed_mentions=NO_MENTIONS)
    elif pressed.shown is not None:
        await _show_result(interaction, pressed.shown)
    else:
        return False
    return True


async def _show_result(interaction: discord.Interaction, event: ResultEvent) -> None:
    context = context_of(interaction)
    request = await context.service.queue.load(event.request_id)
    candidates = [event.grid, event.preview] if len(event.images) > 1 else [event.images[0], event.preview]
    shown = await picture(
        context.service.store,
        candidates,
        interaction.filesize_limit,
        stem=event.request_id,
        spoiler=any(image.spoiler for image in event.images),
    )
    caption = result_caption(request, event, limit=MESSAGE_LIMIT - 100)
    if shown.note:
        caption += "\n" + shown.note
    rows = [*grid_buttons(event.request_id, event.shown_indices), library_buttons(event.request_id)]
    message = await interaction.edit_original_response(
        content=caption,
        attachments=[shown.file] if shown.file else [],
        embeds=[shown.embed] if shown.embed else [],
        view=result_view(rows, full_size_url(event)),
        allowed_mentions=NO_MENTIONS,
    )
    await remember(context, event.request_id, location(message.channel.id, message.id))


def _clipped(text: str) -> str:
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 1] + "…"
