"""/forget: a user deletes their own data (core.governance.forget) once they press “Forget me”.

The command answers with what would go and two buttons (callback_data "fg:y:<token>" / "fg:n:<token>", from
core); only the person who sent /forget can press them. Confirmed, the message is replaced by what was removed,
and the result messages that showed their images are deleted where Telegram still allows it (48 hours).
"""

from __future__ import annotations

import logging

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from bots.telegram.context import BotContext
from bots.telegram.replies import reply_parameters, report_error
from core.errors import InvalidRequest
from core.governance.forget import decode_forget_button, forget_button
from core.models.request import Platform

log = logging.getLogger(__name__)

KEPT = "Nothing was deleted; I still have your data. Send /forget again if you change your mind."


def confirmation_keyboard(token: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton("Forget me", callback_data=forget_button(token, True)),
                InlineKeyboardButton("Keep my data", callback_data=forget_button(token, False)),
            ]
        ]
    )


class ForgetCommand:
    def __init__(self, imagebot: BotContext) -> None:
        self.imagebot = imagebot

    async def forget(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message, user = update.effective_message, update.effective_user
        if message is None or user is None:
            return
        try:
            requester = await self.imagebot.requester(context.bot, user, message.chat)
            plan = await self.imagebot.service.forgetter.plan(requester)
        except Exception as exc:
            await report_error(exc, context.bot, chat_id=message.chat.id, reply_to=message.message_id)
            return
        await context.bot.send_message(
            message.chat.id,
            plan.text(),
            reply_markup=confirmation_keyboard(plan.token),
            reply_parameters=reply_parameters(message.message_id),
        )

    async def on_press(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        if query is None or query.data is None:
            return
        forgetter = self.imagebot.service.forgetter
        try:
            confirm, token = decode_forget_button(query.data)
            if query.message is None:  # too old for Telegram to include
                raise InvalidRequest("forget", "That message is too old; send /forget again.")
            requester = await self.imagebot.requester(context.bot, query.from_user, query.message.chat)
            if not confirm:
                await forgetter.keep(token, requester)
                text = KEPT
            else:
                done = await forgetter.confirm(token, requester)
                text = done.text(await _delete_posts(context.bot, done.messages))
        except Exception as exc:
            await report_error(exc, context.bot, query=query)
            return
        await query.answer("Done." if confirm else "Kept.")
        if query.message is not None:
            try:
                await context.bot.edit_message_text(
                    text, chat_id=query.message.chat.id, message_id=query.message.message_id
                )
            except TelegramError as exc:  # too old to edit: say it afresh
                log.info("the /forget message was not edited (%s)", exc)
                await context.bot.send_message(query.message.chat.id, text)


async def _delete_posts(bot: Bot, locations: tuple[dict[str, str], ...]) -> int:
    """Delete the result messages that were posted on Telegram; returns how many went."""
    removed = 0
    for where in locations:
        if where.get("platform", Platform.TELEGRAM.value) != Platform.TELEGRAM.value:
            continue
        try:
            await bot.delete_message(int(where["chat_id"]), int(where["message_id"]))
        except (TelegramError, KeyError, ValueError) as exc:
            log.info("a posted result was not deleted (%s)", exc)
            continue
        removed += 1
    return removed
