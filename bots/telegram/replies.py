"""The one place errors become messages, and the small helpers that post them in a chat's turn."""

from __future__ import annotations

import logging

from telegram import Bot, CallbackQuery, Message, ReplyParameters
from telegram.error import BadRequest, TelegramError

from bots.telegram.pacing import Pacer
from core.commands.messages import error_message

log = logging.getLogger(__name__)

ALERT_MAX_CHARS = 200  # answerCallbackQuery text limit


def reply_parameters(message_id: int | str | None) -> ReplyParameters | None:
    if not message_id:
        return None
    return ReplyParameters(int(message_id), allow_sending_without_reply=True)


async def send_text(
    pacer: Pacer, bot: Bot, chat_id: int, text: str, reply_to: int | str | None = None
) -> Message:
    return await pacer.send(
        chat_id, lambda: bot.send_message(chat_id, text, reply_parameters=reply_parameters(reply_to))
    )


async def edit_or_send(
    pacer: Pacer,
    bot: Bot,
    chat_id: int,
    message_id: int | str | None,
    text: str,
    reply_to: int | str | None = None,
) -> None:
    """Replace the text of a status message; when it is gone (deleted, too old), send the text as a new reply."""
    if message_id:
        try:
            await pacer.send(
                chat_id, lambda: bot.edit_message_text(text, chat_id=chat_id, message_id=int(message_id))
            )
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
    await send_text(pacer, bot, chat_id, text, reply_to)


async def report_error(
    exc: BaseException,
    pacer: Pacer,
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
            await pacer.retry(lambda: query.answer(alert, show_alert=True))
        elif chat_id is not None:
            await edit_or_send(pacer, bot, chat_id, status_message_id, text, reply_to)
    except TelegramError:
        log.warning("could not tell chat %s about an error", chat_id, exc_info=True)
