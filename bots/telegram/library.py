"""/styles, /history, /info, /describe and /admin check on Telegram: one core call each, and how their answers
look (a page of one's results with a row of buttons per result, the suggestions with an "Imagine n" button each).

What a command acts on: /info takes a request id, or is sent as a reply to one of the bot's results; /describe
is a photo captioned /describe, or a reply to a photo (or to a result: its first image); /admin check is a photo
captioned /admin check, or a reply to one. Images sent as files (documents) work too; anything else is refused
with what to send instead, before anything is downloaded or charged.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from telegram import (
    Bot,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputFile,
    MaybeInaccessibleMessage,
    Message,
    Update,
)
from telegram.constants import ChatType
from telegram.ext import ContextTypes

from bots.telegram.admin import result_request_id, split_message
from bots.telegram.commands import PLACEHOLDER, command_argument
from bots.telegram.context import BotContext
from bots.telegram.delivery import record_delivery
from bots.telegram.markup import button as keyboard_button
from bots.telegram.markup import grid_keyboard
from bots.telegram.replies import caption_for, reply_parameters, report_error, send_text
from core.commands.buttons import history_buttons, library_buttons
from core.commands.links import with_gallery_link
from core.commands.messages import queued_message
from core.commands.uploads import UPLOAD_MAX_BYTES
from core.errors import InvalidRequest
from core.governance.library import Deleted, History
from core.models.request import Requester
from core.models.result import ResultEvent
from core.service import Pressed

log = logging.getLogger(__name__)

NO_PICTURE = (
    "Send a photo with the caption {command}, or reply to a photo (or to one of my results) with {command}."
)
NOT_A_PICTURE = "That file isn't a picture; please send a PNG, JPEG or WebP image."
NO_RESULT = "Reply to one of my results with /info, or give its request id: /info <request id>."
Fetcher = Callable[[], Awaitable[bytes]]


def _fetcher(file_id: str, size: int | None, bot: Bot) -> Fetcher:
    if size is not None and size > UPLOAD_MAX_BYTES:
        raise InvalidRequest(
            "image",
            f"That file is {size / 1e6:.1f} MB; please send one under {UPLOAD_MAX_BYTES // 1_000_000} MB.",
        )

    async def fetch() -> bytes:
        return bytes(await (await bot.get_file(file_id)).download_as_bytearray())

    return fetch


def picture_of(message: Message, bot: Bot) -> Fetcher | None:
    """The picture a message carries or replies to (a photo, or an image sent as a file), fetched when called."""
    for candidate in (message, message.reply_to_message):
        if candidate is None:
            continue
        if candidate.photo:
            photo = candidate.photo[-1]
            return _fetcher(photo.file_id, photo.file_size, bot)
        document = candidate.document
        if document is not None:
            if not (document.mime_type or "").startswith("image/"):
                raise InvalidRequest("image", NOT_A_PICTURE)
            return _fetcher(document.file_id, document.file_size, bot)
    return None


def history_keyboard(history: History) -> InlineKeyboardMarkup | None:
    ids = [entry.request_id for entry in history.entries]
    newer = ids[0] if ids and history.page.has_newer else None
    older = ids[-1] if ids and history.page.has_older else None
    rows = history_buttons(ids, newer, older)
    keyboard = []
    for place, row in enumerate(rows, start=history.page.start + 1):
        keyboard.append(
            [keyboard_button(b, place if place - history.page.start <= len(ids) else None) for b in row]
        )
    return InlineKeyboardMarkup(keyboard) if keyboard else None


def deleted_text(deleted: Deleted) -> str:
    return f"Deleted {deleted.request_id}: its images are gone from storage and from your /history."


class Library:
    def __init__(self, imagebot: BotContext) -> None:
        self.imagebot = imagebot

    async def styles(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message, user = update.effective_message, update.effective_user
        if message is None or user is None:
            return
        try:
            requester = await self.imagebot.requester(context.bot, user, message.chat)
            styles = await self.imagebot.service.list_styles(requester)
        except Exception as exc:
            await report_error(exc, context.bot, chat_id=message.chat.id, reply_to=message.message_id)
            return
        text = (
            "Styles (use one with --style <name>):\n" + "\n".join(style.line() for style in styles)
            if styles
            else "No styles are set up here yet. Moderators add them with /admin style add."
        )
        for piece in split_message(text):
            await send_text(context.bot, message.chat.id, piece, reply_to=message.message_id)

    async def history(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message, user = update.effective_message, update.effective_user
        if message is None or user is None:
            return
        try:
            requester = await self.imagebot.requester(context.bot, user, message.chat)
            history = await self.imagebot.service.history(requester)
        except Exception as exc:
            await report_error(exc, context.bot, chat_id=message.chat.id, reply_to=message.message_id)
            return
        await context.bot.send_message(
            message.chat.id,
            with_gallery_link(
                history.text(),
                self.imagebot.settings,
                requester,
                private=message.chat.type == ChatType.PRIVATE,
            ),
            reply_markup=history_keyboard(history),
            reply_parameters=reply_parameters(message.message_id),
        )

    async def info(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message, user = update.effective_message, update.effective_user
        if message is None or user is None:
            return
        bot = context.bot
        try:
            request_id = command_argument(message.text or "") or None
            reply = message.reply_to_message
            if request_id is None and reply is not None and reply.from_user == bot.bot:
                request_id = result_request_id(reply)
            if request_id is None:
                raise InvalidRequest("info", NO_RESULT)
            requester = await self.imagebot.requester(bot, user, message.chat)
            info = await self.imagebot.service.info(request_id, requester)
        except Exception as exc:
            await report_error(exc, bot, chat_id=message.chat.id, reply_to=message.message_id)
            return
        for piece in split_message(info.text()):
            await send_text(bot, message.chat.id, piece, reply_to=message.message_id)

    async def describe(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/describe: a photo captioned /describe, or a reply to a photo or to one of the bot's results."""
        message, user = update.effective_message, update.effective_user
        if message is None or user is None:
            return
        bot, chat = context.bot, message.chat
        try:
            requester = await self.imagebot.requester(bot, user, chat)
            picture = picture_of(message, bot)
            reply = message.reply_to_message
            result_id = None
            if picture is None and reply is not None and reply.from_user == bot.bot:
                result_id = result_request_id(reply)
            if picture is None and result_id is None:
                raise InvalidRequest("image", NO_PICTURE.format(command="/describe"))
        except Exception as exc:
            await report_error(exc, bot, chat_id=chat.id, reply_to=message.message_id)
            return
        placeholder = await send_text(bot, chat.id, PLACEHOLDER, reply_to=message.message_id)
        reply_to = {
            "chat_id": str(chat.id),
            "message_id": str(message.message_id),
            "status_message_id": str(placeholder.message_id),
        }
        try:
            service = self.imagebot.service
            source_id = f"{chat.id}:{message.message_id}"
            if result_id is not None:
                result = await service.result(result_id)
                index = result.shown_indices[0] if result.images else 0
                submission = await service.describe(
                    requester, result_id=result_id, index=index, source_id=source_id, reply_to=reply_to
                )
            else:
                submission = await service.describe(
                    requester, image=picture, source_id=source_id, reply_to=reply_to
                )
        except Exception as exc:
            await report_error(exc, bot, chat_id=chat.id, status_message_id=placeholder.message_id)
            return
        log.info("describe %s from telegram user %s", submission.request_id, user.id)
        await bot.edit_message_text(
            queued_message(submission), chat_id=chat.id, message_id=placeholder.message_id
        )

    async def check(self, message: Message, bot: Bot) -> None:
        """/admin check on a photo (captioned, or replied to)."""
        user = message.from_user
        if user is None:
            return
        try:
            standing = await self.imagebot.privileges.standing(bot, user, message.chat)
            from bots.telegram.requester import requester_for

            actor = requester_for(user, message.chat, standing.here)
            picture = picture_of(message, bot)
            if picture is None:
                raise InvalidRequest("check", NO_PICTURE.format(command="/admin check"))
            reply = await self.imagebot.admin.check_image(picture, actor)
        except Exception as exc:
            await report_error(exc, bot, chat_id=message.chat.id, reply_to=message.message_id)
            return
        await send_text(bot, message.chat.id, reply.text, reply_to=message.message_id)

    async def on_check_photo(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if update.effective_message is not None:
            await self.check(update.effective_message, context.bot)

    # -- what the library's buttons show ---------------------------------------------------------------------

    async def answer_press(
        self, pressed: Pressed, message: MaybeInaccessibleMessage, bot: Bot, requester: Requester
    ) -> str | None:
        """Show what ⓘ, 🗑, Show, ◀ and ▶ returned; the text for the callback's answer (None: not ours)."""
        chat_id = message.chat.id
        if pressed.info is not None:
            for piece in split_message(pressed.info.text()):
                await send_text(bot, chat_id, piece, reply_to=message.message_id)
            return "Here's how it was made."
        if pressed.history is not None:
            history = pressed.history
            await bot.edit_message_text(
                with_gallery_link(
                    history.text(),
                    self.imagebot.settings,
                    requester,
                    private=message.chat.type == ChatType.PRIVATE,
                ),
                chat_id=chat_id,
                message_id=message.message_id,
                reply_markup=history_keyboard(history),
            )
            return f"Page {history.page.number} of {history.page.pages}"
        if pressed.deleted is not None:
            for location in pressed.deleted.messages:
                if location.get("platform", "telegram") == "telegram":
                    try:
                        await bot.delete_message(int(location["chat_id"]), int(location["message_id"]))
                    except Exception as exc:  # too old, or gone already
                        log.info("message %s not deleted (%s)", location.get("message_id"), exc)
            await send_text(bot, chat_id, deleted_text(pressed.deleted))
            return "Deleted."
        if pressed.shown is not None:
            await self._show(pressed.shown, message, bot)
            return "Here it is."
        return None

    async def _show(self, event: ResultEvent, message: MaybeInaccessibleMessage, bot: Bot) -> None:
        picture = event.preview or event.grid or event.images[0]
        data = await self.imagebot.service.store.get(picture.key)
        request = await self.imagebot.service.queue.load(event.request_id)
        keyboard = grid_keyboard(event)
        rows: list[list[InlineKeyboardButton]] = [list(row) for row in keyboard.inline_keyboard]
        rows.append([keyboard_button(b) for b in library_buttons(event.request_id)])
        sent = await bot.send_photo(
            message.chat.id,
            InputFile(data, filename=f"{event.request_id}.jpg"),
            caption=caption_for(request, event),
            reply_markup=InlineKeyboardMarkup(rows),
            has_spoiler=any(image.spoiler for image in event.images),
            reply_parameters=reply_parameters(message.message_id),
        )
        await record_delivery(self.imagebot.deliveries, event.request_id, sent)
