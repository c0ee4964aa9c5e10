"""The one place errors become messages, and the small helpers that post text into a chat.

Every call goes through the bot's rate limiter (rate_limiter.py), which keeps each chat's messages in order,
spaces them out and waits out 429 answers.

Nothing the bot posts pings anyone: Telegram turns "@username" in any message into a mention that notifies that
user, so every text and caption goes out `unmentioned` (an invisible word joiner after the @), and no parse mode
is ever used (so "[x](tg://user?id=…)" or "<a href=…>" in a prompt stays text). The requester is answered by
replying to their message, which notifies them without a mention.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from telegram import Bot, CallbackQuery, Message, ReplyParameters
from telegram.error import BadRequest, TelegramError
from telegram.ext import ExtBot

from bots.telegram.rate_limiter import NO_RETRIES
from core.commands.messages import CAPTION_LIMIT, error_message, result_caption, text_length
from core.models.request import GenerationRequest
from core.models.result import ResultEvent

log = logging.getLogger(__name__)

ALERT_MAX_CHARS = 200  # answerCallbackQuery text limit
WORD_JOINER = "\u2060"  # invisible, and not a username character
_MENTION = re.compile(r"(?<!\w)@(?=\w)")


def unmentioned(text: str) -> str:
    """`text` as shown, but with no @mention Telegram would link (and notify)."""
    return _MENTION.sub("@" + WORD_JOINER, text)


def caption_for(request: GenerationRequest | None, event: ResultEvent) -> str:
    """The result's caption (core's words), unmentioned, within Telegram's caption limit."""
    limit = CAPTION_LIMIT
    while True:
        caption = unmentioned(result_caption(request, event, limit))
        over = text_length(caption) - CAPTION_LIMIT
        if over <= 0:
            return caption
        limit -= over  # the word joiners pushed it over: leave room for them


def reply_parameters(message_id: int | str | None) -> ReplyParameters | None:
    if not message_id:
        return None
    return ReplyParameters(int(message_id), allow_sending_without_reply=True)


async def send_text(bot: Bot, chat_id: int, text: str, reply_to: int | str | None = None) -> Message:
    return await bot.send_message(chat_id, unmentioned(text), reply_parameters=reply_parameters(reply_to))


async def edit_advisory(bot: ExtBot[Any], chat_id: int, message_id: int | str, text: str) -> bool:
    """Edit a status message with something worth showing but not worth waiting for (queue position,
    progress): no retry after a 429, and a failure is logged at DEBUG. True when the edit was made."""
    try:
        await bot.edit_message_text(
            unmentioned(text), chat_id=chat_id, message_id=int(message_id), rate_limit_args=NO_RETRIES
        )
    except TelegramError as exc:
        log.debug("status message %s in chat %s not edited (%s)", message_id, chat_id, exc)
        return False
    return True


async def edit_or_send(
    bot: Bot, chat_id: int, message_id: int | str | None, text: str, reply_to: int | str | None = None
) -> None:
    """Replace the text of a status message; when it is gone (deleted, too old), send the text as a new reply."""
    if message_id:
        try:
            await bot.edit_message_text(unmentioned(text), chat_id=chat_id, message_id=int(message_id))
            return
        except BadRequest as exc:
            if "not modified" in exc.message:
                return
            log.info(
                "status message %s in chat %s can't be edited (%s); sending a new one",
                message_id,
                chat_id,
                exc.message,
            )
    await send_text(bot, chat_id, text, reply_to)


async def report_error(
    exc: BaseException,
    bot: Bot,
    *,
    chat_id: int | None = None,
    status_message_id: int | str | None = None,
    reply_to: int | str | None = None,
    query: CallbackQuery | None = None,
    request_id: str | None = None,
) -> None:
    """Tell the user what went wrong: as an alert on a button press, else in the status message or a reply.

    User errors are shown as written; anything unexpected becomes an apology with the request id (and
    `error_message` logs the traceback).
    """
    text = error_message(exc, request_id)
    try:
        if query is not None:
            alert = text if len(text) <= ALERT_MAX_CHARS else text[: ALERT_MAX_CHARS - 1] + "…"
            await query.answer(alert, show_alert=True)
        elif chat_id is not None:
            await edit_or_send(bot, chat_id, status_message_id, text, reply_to)
    except TelegramError:
        log.warning("could not tell chat %s about an error", chat_id, exc_info=True)
