"""Commands and messages: parse Telegram input into core calls and acknowledge at once.

/quota shows the user's usage and limits; /loras the LoRA catalog; /admin is in admin.py.

/imagine (alias /img), a plain message in a private chat, and a photo captioned /imagine (or /imagine in
reply to a photo) all become `service.imagine`. What can be refused at once (a ban, a paused group, a bad flag,
a refused prompt, the quota) is refused before anything else is shown, and before a photo is fetched. Otherwise the user
gets a "Queued…" reply straight away; it is edited with the queue position, then with progress, and replaced by
the result (see delivery.py).
"""

from __future__ import annotations

import logging
from typing import Any

from telegram import Bot, Message, PhotoSize, Update
from telegram.constants import ChatAction, ChatType
from telegram.error import Forbidden, TelegramError
from telegram.ext import ContextTypes, ExtBot

from bots.telegram.context import BotContext
from bots.telegram.help_text import START_TEXT, help_text
from bots.telegram.replies import edit_advisory, report_error, send_text
from core.commands.messages import error_message, queued_message
from core.errors import NotAllowed
from core.jobs.queue import CancelOutcome, Submission
from core.models.request import Platform
from core.service import SourceFetcher

log = logging.getLogger(__name__)

PLACEHOLDER = "Queued…"
PRIVATE_CHAT_CLOSED = (
    "I can't write to you privately yet: open a private chat with me and press Start, "
    "or turn off private replies in /settings."
)
CANCEL_TEXTS = {
    CancelOutcome.CANCELLED: "Cancelled your last request.",
    CancelOutcome.RUNNING: "Your last request is already being drawn, so it can't be cancelled now.",
    CancelOutcome.UNKNOWN: "Your last request has already finished — there is nothing waiting to cancel.",
}


def command_argument(text: str) -> str:
    """What follows the command word: "/imagine@bot a fox --ar 1:1" → "a fox --ar 1:1"."""
    parts = text.split(maxsplit=1)
    return parts[1].strip() if len(parts) > 1 else ""


def addressed_to(text: str, username: str) -> bool:
    """False only for a command addressed to another bot: "/imagine@other_bot …"."""
    command = text.split(maxsplit=1)[0] if text.strip() else ""
    _, at, name = command.partition("@")
    return not at or name.lower() == username.lower()


def _photo_fetcher(photo: PhotoSize) -> SourceFetcher:
    """The upload's bytes, fetched from Telegram only when core asks (after every check passed)."""

    async def fetch() -> bytes:
        telegram_file = await photo.get_file()
        return bytes(await telegram_file.download_as_bytearray())

    return fetch


def _photo_of(message: Message) -> PhotoSize | None:
    if message.photo:
        return message.photo[-1]
    reply = message.reply_to_message
    if reply is not None and reply.photo:
        return reply.photo[-1]
    return None


class Commands:
    def __init__(self, imagebot: BotContext) -> None:
        self.imagebot = imagebot

    async def imagine(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/imagine and /img; also a photo whose caption is /imagine …"""
        message = update.effective_message
        if message is None:
            return
        text = message.text or message.caption or ""
        if not addressed_to(text, context.bot.username):
            return  # a photo captioned /imagine@another_bot
        await self._imagine(message, command_argument(text), context)

    async def plain_text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Private chats: any plain message is a prompt."""
        message = update.effective_message
        if message is None or not message.text:
            return
        await self._imagine(message, message.text.strip(), context)

    async def _imagine(self, message: Message, text: str, context: ContextTypes.DEFAULT_TYPE) -> None:
        user, chat, bot = message.from_user, message.chat, context.bot
        if user is None:
            return
        prefs = await self.imagebot.preferences.get(Platform.TELEGRAM, str(user.id))
        # "Private replies" in /settings: a request made in a group is answered in the user's private chat.
        target = user.id if prefs.private and chat.type != ChatType.PRIVATE else chat.id
        asked_here = message.message_id if target == chat.id else None
        try:
            requester = await self.imagebot.requester(bot, user, chat)
            # bans, a paused group, the grammar, the prompt and the quota: nothing shown or fetched before
            await self.imagebot.service.precheck(
                text,
                requester,
                source_id=f"{chat.id}:{message.message_id}",
                defaults=prefs.defaults(),
                with_image=_photo_of(message) is not None,
            )
        except Exception as exc:  # refused before anything was shown: no "Queued…" first
            await self._refuse(exc, bot, message, target)
            return
        try:
            placeholder = await send_text(bot, target, PLACEHOLDER, reply_to=asked_here)
        except Forbidden:
            await report_error(
                NotAllowed(PRIVATE_CHAT_CLOSED), bot, chat_id=chat.id, reply_to=message.message_id
            )
            return
        reply_to = {"chat_id": str(target), "status_message_id": str(placeholder.message_id)}
        if asked_here:
            reply_to["message_id"] = str(asked_here)
        try:
            photo = _photo_of(message)
            submission = await self.imagebot.service.imagine(
                text,
                requester,
                source_id=f"{chat.id}:{message.message_id}",
                reply_to=reply_to,
                defaults=prefs.defaults(),
                source_image=None if photo is None else _photo_fetcher(photo),  # fetched once checked
            )
        except Exception as exc:  # what only queueing can tell: the quota, a missing worker, the upload
            await report_error(
                exc, bot, chat_id=target, status_message_id=placeholder.message_id, reply_to=asked_here
            )
            return
        log.info("request %s from telegram user %s in chat %s", submission.request_id, user.id, chat.id)
        await self._acknowledge(bot, target, placeholder.message_id, submission)

    async def _refuse(self, exc: Exception, bot: Bot, message: Message, target: int) -> None:
        """Say why a command was refused: replying to it, or in the private chat for private replies."""
        if target == message.chat.id:
            await report_error(exc, bot, chat_id=target, reply_to=message.message_id)
            return
        try:
            await send_text(bot, target, error_message(exc))
        except Forbidden:
            await report_error(
                NotAllowed(PRIVATE_CHAT_CLOSED), bot, chat_id=message.chat.id, reply_to=message.message_id
            )

    async def _acknowledge(
        self, bot: ExtBot[Any], target: int, status_id: int, submission: Submission
    ) -> None:
        if not submission.cached:  # a cached result is on its way and replaces the placeholder itself
            # The result may have replaced the placeholder already: then the edit fails, and that's fine.
            await edit_advisory(bot, target, status_id, queued_message(submission))
        try:
            await bot.send_chat_action(target, ChatAction.UPLOAD_PHOTO)
        except TelegramError as exc:
            log.debug("request %s: chat action not shown (%s)", submission.request_id, exc)

    async def start(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self._reply(update, context, START_TEXT)

    async def help(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self._reply(update, context, help_text())

    async def quota(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/quota: the user's tier, usage and limits, and when the daily count resets."""
        message, user = update.effective_message, update.effective_user
        if message is None or user is None:
            return
        try:
            requester = await self.imagebot.requester(context.bot, user, message.chat)
            status = await self.imagebot.service.admission.quotas.status(requester)
        except Exception as exc:
            await report_error(exc, context.bot, chat_id=message.chat.id, reply_to=message.message_id)
            return
        if not self.imagebot.settings.quotas.enabled:
            text = "There are no limits on this bot: quotas are turned off."
        else:
            text = "Your usage and limits:\n" + status.describe()
        await self._reply(update, context, text)

    async def loras(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/loras: the LoRA styles for --lora, with those turned off in this group marked."""
        message, user = update.effective_message, update.effective_user
        if message is None or user is None:
            return
        try:
            requester = await self.imagebot.requester(context.bot, user, message.chat)
            text = await self.imagebot.service.loras(requester)
        except Exception as exc:
            await report_error(exc, context.bot, chat_id=message.chat.id, reply_to=message.message_id)
            return
        await self._reply(update, context, text)

    async def cancel(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/cancel: the user's latest request (core keeps each user's recent ones), if it still waits."""
        message, user = update.effective_message, update.effective_user
        if message is None or user is None:
            return
        request_id: str | None = None
        try:
            requester = await self.imagebot.requester(context.bot, user, message.chat)
            request_id = await self.imagebot.service.last_request(requester)
            outcome = await self.imagebot.service.cancel(request_id, requester)
        except Exception as exc:
            await report_error(
                exc,
                context.bot,
                chat_id=message.chat.id,
                reply_to=message.message_id,
                request_id=request_id,
            )
            return
        await self._reply(update, context, CANCEL_TEXTS.get(outcome, CANCEL_TEXTS[CancelOutcome.UNKNOWN]))

    async def _reply(self, update: Update, context: ContextTypes.DEFAULT_TYPE, text: str) -> None:
        message = update.effective_message
        if message is not None:
            await send_text(context.bot, message.chat.id, text, reply_to=message.message_id)
