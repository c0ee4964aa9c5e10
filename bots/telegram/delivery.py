"""Result events → Telegram messages.

DONE: the preview as a photo replying to the asking message, with the caption and the U/V/🔄 keyboard; where
it was posted goes to core's DeliveryLog (for `/admin delete`), and the status message is then deleted (or, when
Telegram won't delete it any more, edited to say the images are below).
FAILED, REFUSED, CANCELLED: the status message says why (or a new reply, when a live preview replaced it).
STARTED and PROGRESS go to progress.py (the chat action, and the status message — or the photo showing the live
preview — edited at most once per `progress_interval_s`). Once any result is out, the live preview's photo is
removed (progress.py's `remove`); while the result can't be sent it stays, so nothing is lost to a failed send.
NOTICE (a message for moderators, e.g. an automatic ban) is posted once to its chat.

`handle` raises when a result could not be delivered, so the event consumer retries it; 429 answers are
waited out by the bot's rate limiter. A chat that blocked the bot (403) or no longer exists can never be
reached, so that result is dropped with a warning. A group upgraded to a supergroup (ChatMigrated) gets the
result in the supergroup, as a message of its own: the status and asking messages stayed behind in the old
group.
"""

from __future__ import annotations

import logging
from typing import Any

from telegram import InlineKeyboardMarkup, InputFile, Message
from telegram.error import BadRequest, ChatMigrated, Forbidden, TelegramError
from telegram.ext import ExtBot

from bots.telegram.context import BotContext
from bots.telegram.markup import button, grid_keyboard
from bots.telegram.progress import ProgressDisplay
from bots.telegram.replies import caption_for, edit_or_send, reply_parameters, send_text
from core.commands.describe import described_text, suggestion_buttons
from core.delivery.delivery_log import DeliveryLog
from core.delivery.preview_message import PreviewMessages
from core.errors import NotFound, StorageError
from core.models.request import Platform
from core.models.result import EventKind, ResultEvent, StoredImage

log = logging.getLogger(__name__)

DELIVERED = "Done — the images are in the reply below."
CONTROL_CAPTION = "The control map these images followed."
APOLOGY = "Sorry — something went wrong on our side (reference {request_id}). Please try again in a moment."


async def record_delivery(deliveries: DeliveryLog, request_id: str, sent: Message) -> None:
    """Remember where a result's image was posted, so `/admin delete` can remove the message.

    The message is out already: a failure here is logged, never raised (raising would post it twice).
    """
    location = {
        "platform": Platform.TELEGRAM.value,
        "chat_id": str(sent.chat.id),
        "message_id": str(sent.message_id),
    }
    try:
        await deliveries.record(request_id, location)
    except Exception:
        log.warning("request %s: where it was delivered could not be recorded", request_id, exc_info=True)


class Delivery:
    def __init__(self, imagebot: BotContext, bot: ExtBot[Any]) -> None:
        self.imagebot = imagebot
        self.bot = bot
        previews = PreviewMessages(imagebot.redis, Platform.TELEGRAM.value)
        tuning = imagebot.tuning
        self.progress = ProgressDisplay(
            bot, tuning.progress_interval_s, previews, photo_min_left_s=tuning.preview_photo_min_left_s
        )

    async def close(self) -> None:
        """Drop progress held back for later (the bot is stopping); results are never held."""
        await self.progress.close()

    async def handle(self, event: ResultEvent) -> None:
        chat = event.reply_to.get("chat_id")
        if not chat:
            log.warning("request %s: %s event has no chat to reply to; dropped", event.request_id, event.kind)
            return
        chat_id = int(chat)
        if not event.terminal:
            await self.progress.show(chat_id, event)
            return
        preview = await self.progress.end(event.request_id)
        try:
            await self._deliver(chat_id, event)
        except ChatMigrated as exc:
            log.info(
                "request %s: chat %s is now the supergroup %s; delivering there",
                event.request_id,
                chat_id,
                exc.new_chat_id,
            )
            # The old group's message ids mean nothing in the supergroup: reply to nothing, edit nothing.
            await self.handle(event.model_copy(update={"reply_to": {"chat_id": str(exc.new_chat_id)}}))
            return
        except (Forbidden, BadRequest) as exc:
            if isinstance(exc, BadRequest) and "chat not found" not in exc.message.lower():
                raise
            log.warning(
                "request %s: chat %s can't be reached (%s); result dropped",
                event.request_id,
                chat_id,
                exc.message,
            )
            return
        if preview is not None:  # the result is out: the photo that showed the render goes
            await self.progress.remove(chat_id, event.request_id, preview)

    async def _deliver(self, chat_id: int, event: ResultEvent) -> None:
        if event.kind is EventKind.NOTICE:
            await self._notice(chat_id, event)
        elif event.kind is EventKind.DONE:
            await self._done(chat_id, event)
        elif event.kind is EventKind.DESCRIBED:
            await self._described(chat_id, event)
        else:
            await self._ended(chat_id, event)

    async def _notice(self, chat_id: int, event: ResultEvent) -> None:
        """A message for moderators (an automatic ban…) in the chat set as the community's log channel."""
        if not event.message:
            log.warning("notice %s has no text; dropped", event.request_id)
            return
        await send_text(self.bot, chat_id, event.message)
        log.info("notice %s posted to chat %s", event.request_id, chat_id)

    async def _done(self, chat_id: int, event: ResultEvent) -> None:
        picture = event.preview or event.grid or (event.images[0] if event.images else None)
        if picture is None:
            log.error("request %s: DONE event without images", event.request_id)
            await self._ended(chat_id, event.model_copy(update={"message": None}))
            return
        try:
            await self._send_result(chat_id, event, picture)
        except StorageError:
            log.exception("request %s: the result's image can't be read; apologising", event.request_id)
            await self._ended(chat_id, event.model_copy(update={"kind": EventKind.FAILED, "message": None}))
        except BadRequest as exc:
            if "chat not found" in exc.message.lower():
                raise
            log.error(
                "request %s: Telegram refused the photo (%s); apologising", event.request_id, exc.message
            )
            await self._ended(chat_id, event.model_copy(update={"kind": EventKind.FAILED, "message": None}))

    async def _send_result(self, chat_id: int, event: ResultEvent, picture: StoredImage) -> None:
        data = await self.imagebot.service.store.get(picture.key)
        try:
            request = await self.imagebot.service.queue.load(event.request_id)
        except NotFound:
            request = None
        caption = caption_for(request, event)
        spoiler = picture.spoiler or any(image.spoiler for image in event.images)
        extension = "png" if picture.content_type == "image/png" else "jpg"
        reply = event.reply_to.get("message_id")
        sent = await self.bot.send_photo(
            chat_id,
            InputFile(data, filename=f"{event.request_id}.{extension}"),
            caption=caption,
            reply_markup=grid_keyboard(event, request.mode if request else None),
            has_spoiler=spoiler,
            reply_parameters=reply_parameters(reply),
        )
        log.info("request %s: result delivered to chat %s", event.request_id, chat_id)
        await record_delivery(self.imagebot.deliveries, event.request_id, sent)
        await self._send_control(chat_id, event, sent)
        await self._retire_status(chat_id, event)

    async def _described(self, chat_id: int, event: ResultEvent) -> None:
        """A finished /describe: the numbered suggestions, with an "Imagine n" button for each."""
        rows = [[button(b) for b in row] for row in suggestion_buttons(event)]
        await self.bot.send_message(
            chat_id,
            described_text(event)[:4096],
            reply_markup=InlineKeyboardMarkup(rows),
            reply_parameters=reply_parameters(event.reply_to.get("message_id")),
        )
        log.info("describe %s: suggestions delivered to chat %s", event.request_id, chat_id)
        await self._retire_status(chat_id, event)

    async def _send_control(self, chat_id: int, event: ResultEvent, result: Message) -> None:
        """The control map a ControlNet followed (--control), as a photo replying to the result. The result is
        out already, so a failure here is logged, never raised (raising would post the result twice)."""
        if event.control is None:
            return
        try:
            data = await self.imagebot.service.store.get(event.control.key)
            sent = await self.bot.send_photo(
                chat_id,
                InputFile(data, filename=f"{event.request_id}-control.png"),
                caption=CONTROL_CAPTION,
                reply_parameters=reply_parameters(str(result.message_id)),
            )
        except (StorageError, TelegramError):
            log.warning("request %s: the control map was not shown", event.request_id, exc_info=True)
            return
        await record_delivery(self.imagebot.deliveries, event.request_id, sent)

    async def _retire_status(self, chat_id: int, event: ResultEvent) -> None:
        """The result is out: its status message goes. Where Telegram won't delete it (a bot may delete only
        messages under 48 hours old, as after a long outage), it is edited to say so, never left "Queued"."""
        status = event.reply_to.get("status_message_id")
        if not status:
            return
        try:
            await self.bot.delete_message(chat_id, int(status))
            return
        except TelegramError as exc:
            if "not found" in exc.message.lower():
                return  # gone already
            log.info(
                "request %s: status message not deleted (%s); marking it done", event.request_id, exc.message
            )
        try:
            await self.bot.edit_message_text(DELIVERED, chat_id=chat_id, message_id=int(status))
        except TelegramError as exc:
            log.info("request %s: status message left as it was (%s)", event.request_id, exc.message)

    async def _ended(self, chat_id: int, event: ResultEvent) -> None:
        """FAILED, REFUSED, CANCELLED: the event's own words in the status message (or a reply)."""
        text = event.message or APOLOGY.format(request_id=event.request_id)
        if event.kind is EventKind.FAILED and event.message and event.request_id not in text:
            text = f"{text} (reference {event.request_id})"
        await edit_or_send(
            self.bot,
            chat_id,
            event.reply_to.get("status_message_id"),
            text,
            reply_to=event.reply_to.get("message_id"),
        )
