"""Result buttons (callback_data "ib:…"): decoded here, run by core's one dispatch, `ImagineService.press`.

A press either queued a job (V<i>, 🔄, vary, upscale 2×: answered with the queue position as a toast) or picked
a finished image (U<i>: sent as a document, uncompressed, with its own buttons). Every callback query is
answered — with an alert saying what is wrong when the press can't be served (someone else's buttons, an expired
request, data that is no button of ours). Button ids carry all their state, so old messages keep working after
restarts; ownership is checked by core against the stored request.
"""

from __future__ import annotations

import logging

from telegram import CallbackQuery, InputFile, Update
from telegram.constants import ChatAction
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from bots.telegram.context import BotContext
from bots.telegram.delivery import record_delivery
from bots.telegram.library import Library
from bots.telegram.markup import single_keyboard
from bots.telegram.replies import reply_parameters, report_error
from core.commands.buttons import decode_button
from core.commands.messages import queued_message
from core.models.result import StoredImage
from core.service import Pressed

log = logging.getLogger(__name__)

TOO_OLD = "That message is too old; please run /imagine again."
UNKNOWN = "That button isn't one I know; please run /imagine again."


class Buttons:
    def __init__(self, imagebot: BotContext) -> None:
        self.imagebot = imagebot
        self.library = Library(imagebot)

    async def on_press(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        if query is None or query.data is None:
            return
        message = query.message
        if message is None:  # too old for Telegram to include: nothing to reply to
            await query.answer(TOO_OLD, show_alert=True)
            return
        reply_to = {"chat_id": str(message.chat.id), "message_id": str(message.message_id)}
        try:
            requester = await self.imagebot.requester(context.bot, query.from_user, message.chat)
            pressed = await self.imagebot.service.press(
                decode_button(query.data), requester, reply_to=reply_to
            )
        except Exception as exc:
            await report_error(exc, context.bot, query=query)
            return
        if pressed.image is not None:
            await self._send_image(query, pressed, pressed.image, context)
            return
        try:
            shown = await self.library.answer_press(pressed, message, context.bot, requester)
        except Exception as exc:
            await report_error(exc, context.bot, query=query)
            return
        if shown is not None:
            await query.answer(shown)
            return
        assert pressed.submission is not None
        await query.answer(queued_message(pressed.submission))
        try:
            await context.bot.send_chat_action(message.chat.id, ChatAction.UPLOAD_PHOTO)
        except TelegramError as exc:
            log.debug("chat action failed: %s", exc)

    async def on_unknown(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Any other callback query (no prefix of ours, random bytes, an old bot's buttons): answered, so the
        button stops spinning, with what to do instead."""
        query = update.callback_query
        if query is not None:
            log.info("unknown callback data %r from user %s", (query.data or "")[:64], query.from_user.id)
            await query.answer(UNKNOWN, show_alert=True)

    async def _send_image(
        self, query: CallbackQuery, pressed: Pressed, image: StoredImage, context: ContextTypes.DEFAULT_TYPE
    ) -> None:
        """U<i>: image i at full size as a document (uncompressed), with its own buttons."""
        assert query.message is not None
        request_id, index = pressed.button.request_id, pressed.button.index or 0
        try:
            data = await self.imagebot.service.store.get(image.key)
        except Exception as exc:
            await report_error(exc, context.bot, query=query, request_id=request_id)
            return
        await query.answer(f"Sending image {index + 1}…")
        chat_id = query.message.chat.id
        seed = f" · seed {image.seed}" if image.seed is not None else ""
        try:
            sent = await context.bot.send_document(
                chat_id,
                InputFile(data, filename=f"{request_id}-{index + 1}.png"),
                caption=f"Image {index + 1} · {image.width}×{image.height}{seed}",
                reply_markup=single_keyboard(request_id, index, image.url),
                reply_parameters=reply_parameters(query.message.message_id),
            )
            await record_delivery(self.imagebot.deliveries, request_id, sent)
        except Exception as exc:  # the query is answered already: say it in the chat instead
            await report_error(
                exc, context.bot, chat_id=chat_id, reply_to=query.message.message_id, request_id=request_id
            )
