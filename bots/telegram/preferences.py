"""/settings: per-user defaults (aspect ratio, model, image count, private replies, Remix, live previews) on an
inline keyboard.

Its buttons carry callback_data "st:<field>:<value>" (≤ 64 bytes); a press changes the presser's own
defaults in core's PreferenceStore and redraws the menu.
"""

from __future__ import annotations

import logging

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import BadRequest
from telegram.ext import ContextTypes

from bots.telegram.context import BotContext
from bots.telegram.replies import reply_parameters, report_error, send_text
from core.errors import InvalidRequest
from core.governance.preferences import ASPECTS, UserPrefs
from core.models.catalog import model_names
from core.models.request import Platform

log = logging.getLogger(__name__)

PREFIX = "st"
CALLBACK_PATTERN = rf"^{PREFIX}:"
COUNTS = (1, 2, 3, 4)


def _mark(label: str, chosen: bool) -> str:
    return f"✓ {label}" if chosen else label


def menu_text(prefs: UserPrefs) -> str:
    previews = (
        "on — a small picture of the image as it forms" if prefs.previews else "off — progress as text only"
    )
    return (
        "Your defaults (flags in a command still win):\n"
        f"Aspect ratio: {prefs.aspect or 'model default'}\n"
        f"Model: {prefs.model or 'bot default'}\n"
        f"Images: {prefs.n or 'bot default'}\n"
        f"Replies: {'private (sent to our private chat)' if prefs.private else 'in the chat where you ask'}\n"
        f"Remix: {'on — edit the prompt before V, 🔄, zoom, pan and region edits' if prefs.remix else 'off'}\n"
        f"Live previews: {previews}"
    )


def menu_keyboard(prefs: UserPrefs) -> InlineKeyboardMarkup:
    def button(label: str, field: str, value: str, chosen: bool) -> InlineKeyboardButton:
        return InlineKeyboardButton(_mark(label, chosen), callback_data=f"{PREFIX}:{field}:{value}")

    aspects = [button(a, "ar", a, prefs.aspect == a) for a in ASPECTS]
    models = [button(m, "m", m, prefs.model == m) for m in model_names()]
    counts = [button(str(n), "n", str(n), prefs.n == n) for n in COUNTS]
    privacy = button("Private replies", "p", "0" if prefs.private else "1", prefs.private)
    remix = button("Remix", "rx", "0" if prefs.remix else "1", prefs.remix)
    previews = button("Live previews", "lp", "0" if prefs.previews else "1", prefs.previews)
    reset = InlineKeyboardButton("Reset", callback_data=f"{PREFIX}:reset:")
    rows = [
        aspects[:4],
        aspects[4:],
        *[models[i : i + 3] for i in range(0, len(models), 3)],
        counts,
        [privacy, remix],
        [previews, reset],
    ]
    return InlineKeyboardMarkup(rows)


def parse_choice(data: str) -> dict[str, object]:
    """The PreferenceStore changes a button stands for; InvalidRequest for anything unknown."""
    _, field, value = [*data.split(":", 2), "", ""][:3]
    if field == "ar":
        return {"aspect": value}
    if field == "m":
        return {"model": value}
    if field == "n" and value.isdigit():
        return {"n": int(value)}
    if field == "p" and value in ("0", "1"):
        return {"private": value == "1"}
    if field == "rx" and value in ("0", "1"):
        return {"remix": value == "1"}
    if field == "lp" and value in ("0", "1"):
        return {"previews": value == "1"}
    if field == "reset":
        return UserPrefs().model_dump()  # every field back to its default
    raise InvalidRequest("settings", "That settings button isn't one I know; please send /settings again.")


class PreferencesMenu:
    def __init__(self, imagebot: BotContext) -> None:
        self.imagebot = imagebot

    async def show(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message, user = update.effective_message, update.effective_user
        if message is None or user is None:
            return
        prefs = await self.imagebot.preferences.get(Platform.TELEGRAM, str(user.id))
        chat_id = message.chat.id
        await context.bot.send_message(
            chat_id,
            menu_text(prefs),
            reply_markup=menu_keyboard(prefs),
            reply_parameters=None if message.chat.type == "private" else reply_parameters(message.message_id),
        )

    async def on_choice(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        if query is None or query.data is None:
            return
        try:
            prefs = await self.imagebot.preferences.update(
                Platform.TELEGRAM, str(query.from_user.id), **parse_choice(query.data)
            )
        except Exception as exc:
            await report_error(exc, context.bot, query=query)
            return
        await query.answer("Saved.")
        if query.message is None:
            return
        chat_id = query.message.chat.id
        try:
            await context.bot.edit_message_text(
                menu_text(prefs),
                chat_id=chat_id,
                message_id=query.message.message_id,
                reply_markup=menu_keyboard(prefs),
            )
        except BadRequest as exc:  # unchanged, or the menu is too old to edit: show a fresh one
            if "not modified" not in exc.message:
                await send_text(context.bot, chat_id, menu_text(prefs))
