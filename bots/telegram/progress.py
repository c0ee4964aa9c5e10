"""STARTED/PROGRESS events → the "uploading photo" chat action and the status message edited with the progress.

At most one edit per `interval_s` per chat (Telegram allows about one message a second per chat, and edits
count). An event that arrives inside the interval is held back, and when the interval ends the latest one held
is shown — unless its request has ended meanwhile, so "Rendering… 80%" never overwrites a result or an error.
Progress is advisory: a failed edit is logged at DEBUG and dropped, never retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict

from telegram import Bot
from telegram.constants import ChatAction
from telegram.error import TelegramError

from bots.telegram.pacing import Pacer
from core.commands.messages import progress_message
from core.models.result import EventKind, ResultEvent

log = logging.getLogger(__name__)

ENDED_REMEMBERED = 4096  # request ids whose late progress is ignored
CHATS_REMEMBERED = 10_000  # beyond this, chats with no recent edit are forgotten


class ProgressDisplay:
    def __init__(self, bot: Bot, pacer: Pacer, interval_s: float) -> None:
        self.bot = bot
        self.pacer = pacer
        self.interval_s = interval_s
        self._last_edit: dict[int, float] = {}
        self._held: dict[int, ResultEvent] = {}
        self._flushes: dict[int, asyncio.Task[None]] = {}
        self._ended: OrderedDict[str, None] = OrderedDict()

    async def show(self, chat_id: int, event: ResultEvent) -> None:
        """Show a STARTED or PROGRESS event now, or hold it until this chat's interval ends."""
        if event.kind is EventKind.STARTED:
            await self._chat_action(chat_id, event)
        wait = self._last_edit.get(chat_id, float("-inf")) + self.interval_s - time.monotonic()
        if wait > 0:
            self._held[chat_id] = event  # a newer event replaces an older one held
            if chat_id not in self._flushes:
                self._flushes[chat_id] = asyncio.create_task(
                    self._show_held(chat_id, wait), name=f"telegram-progress-{chat_id}"
                )
            return
        self._held.pop(chat_id, None)  # this one is newer than anything held
        await self._edit(chat_id, event)

    def end(self, request_id: str) -> None:
        """The request has ended (its result is being delivered): none of its progress is shown any more."""
        self._ended[request_id] = None
        while len(self._ended) > ENDED_REMEMBERED:
            self._ended.popitem(last=False)
        for chat_id, held in list(self._held.items()):
            if held.request_id == request_id:
                del self._held[chat_id]

    async def close(self) -> None:
        """Drop what is held (the bot is stopping)."""
        tasks = list(self._flushes.values())
        self._flushes.clear()
        self._held.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _show_held(self, chat_id: int, delay: float) -> None:
        await asyncio.sleep(delay)
        self._flushes.pop(chat_id, None)  # from here on, a new event schedules its own
        event = self._held.pop(chat_id, None)
        if event is not None:
            await self._edit(chat_id, event)

    async def _chat_action(self, chat_id: int, event: ResultEvent) -> None:
        if event.request_id in self._ended:
            return
        try:
            await self.bot.send_chat_action(chat_id, ChatAction.UPLOAD_PHOTO)
        except TelegramError as exc:
            log.debug("request %s: chat action not shown (%s)", event.request_id, exc)

    async def _edit(self, chat_id: int, event: ResultEvent) -> None:
        now = time.monotonic()
        self._last_edit[chat_id] = now
        if len(self._last_edit) > CHATS_REMEMBERED:
            self._last_edit = {c: t for c, t in self._last_edit.items() if now - t < self.interval_s}
        if event.kind is EventKind.PROGRESS:
            await self._chat_action(chat_id, event)  # keeps "uploading photo" showing on long renders
        status = event.reply_to.get("status_message_id")
        if not status:
            return

        async def edit_unless_ended() -> None:
            # Checked in the chat's turn: a result or an error posted meanwhile is never overwritten.
            if event.request_id not in self._ended:
                await self.bot.edit_message_text(
                    progress_message(event), chat_id=chat_id, message_id=int(status)
                )

        try:
            await self.pacer.send(chat_id, edit_unless_ended, retry=False)
        except TelegramError as exc:  # advisory: never worth a retry
            log.debug("request %s: progress not shown (%s)", event.request_id, exc)
