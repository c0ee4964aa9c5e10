"""Result buttons (callback_data "ib:…"): U<i> sends one image as a document; V<i>, 🔄, vary and upscale queue jobs.

Every callback query is answered: with the queue position as a toast, or with an alert saying what is wrong
(someone else's buttons, an expired request). Button ids carry all their state, so old messages keep working
after restarts; ownership is checked by core against the stored request.
"""

from __future__ import annotations

import logging
import time

from telegram import CallbackQuery, InputFile, Update
from telegram.constants import ChatAction
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from bots.telegram.delivery import record_delivery
from bots.telegram.deps import BotDeps
from bots.telegram.keyboards import single_keyboard
from bots.telegram.replies import reply_parameters, report_error
from core import constants as c
from core.commands.buttons import Button, decode_button, press_source_id
from core.commands.messages import queued_message
from core.jobs.queue import Submission
from core.models.request import Requester

log = logging.getLogger(__name__)


class Callbacks:
    def __init__(self, deps: BotDeps) -> None:
        self.deps = deps

    async def on_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        if query is None or query.data is None:
            return
        message = query.message
        if message is None:  # too old for Telegram to include: nothing to reply to
            await self.deps.pacer.retry(
                lambda: query.answer("That message is too old; please run /imagine again.")
            )
            return
        try:
            requester = await self.deps.requester(context.bot, query.from_user, message.chat)
            button = decode_button(query.data)
            if button.action == c.ACTION_UPSCALE:
                await self._send_image(query, button, requester, context)
                return
            submission = await self._submit(button, requester, query)
        except Exception as exc:
            await report_error(exc, self.deps.pacer, context.bot, query=query)
            return
        await self.deps.pacer.retry(lambda: query.answer(queued_message(submission)))
        try:
            await context.bot.send_chat_action(message.chat.id, ChatAction.UPLOAD_PHOTO)
        except TelegramError as exc:
            log.debug("chat action failed: %s", exc)

    async def _submit(self, button: Button, requester: Requester, query: CallbackQuery) -> Submission:
        assert query.message is not None
        service = self.deps.service
        source_id = press_source_id(button.encode(), requester.user_id, time.time())
        reply_to = {"chat_id": str(query.message.chat.id), "message_id": str(query.message.message_id)}
        index = button.index if button.index is not None else 0
        if button.action == c.ACTION_REROLL:
            return await service.reroll(button.request_id, requester, source_id=source_id, reply_to=reply_to)
        if button.action == c.ACTION_UPSCALE_2X:
            return await service.upscale(
                button.request_id, index, requester, source_id=source_id, reply_to=reply_to
            )
        strong = button.action != c.ACTION_VARY_SUBTLE  # V<i> and "Vary (strong)"
        return await service.vary(
            button.request_id, index, requester, strong=strong, source_id=source_id, reply_to=reply_to
        )

    async def _send_image(
        self, query: CallbackQuery, button: Button, requester: Requester, context: ContextTypes.DEFAULT_TYPE
    ) -> None:
        """U<i>: image i at full size as a document (uncompressed), with its own buttons."""
        assert query.message is not None
        index = button.index or 0
        # Its owner's, or anyone's where the community allows; NotAllowed for banned users and paused groups.
        image = await self.deps.service.image(button.request_id, index, requester)
        data = await self.deps.service.store.get(image.key)
        await self.deps.pacer.retry(lambda: query.answer(f"Sending image {index + 1}…"))
        chat_id, pacer = query.message.chat.id, self.deps.pacer
        seed = f" · seed {image.seed}" if image.seed is not None else ""
        try:
            sent = await pacer.send(
                chat_id,
                lambda: context.bot.send_document(
                    chat_id,
                    InputFile(data, filename=f"{button.request_id}-{index + 1}.png"),
                    caption=f"Image {index + 1} · {image.width}×{image.height}{seed}",
                    reply_markup=single_keyboard(button.request_id, index, image.url),
                    reply_parameters=reply_parameters(query.message.message_id if query.message else None),
                ),
            )
            await record_delivery(self.deps.deliveries, button.request_id, sent)
        except Exception as exc:  # the query is answered already: say it in the chat instead
            await report_error(
                exc,
                pacer,
                context.bot,
                chat_id=chat_id,
                reply_to=query.message.message_id,
                request_id=button.request_id,
            )
