"""STARTED/PROGRESS events → the "uploading photo" chat action and the status message edited with the progress.

When to edit is core's decision (core/delivery/progress.py): at most one edit per `interval_s` per status
message, always the latest step, and nothing once the request has ended, so "Rendering… 80%" never overwrites a
result or an error. This module owns the timer that shows held steps when their interval ends.

Progress is advisory: a failed edit is logged at DEBUG and dropped, never retried (a 429 is not waited out).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from telegram.constants import ChatAction
from telegram.error import TelegramError
from telegram.ext import ExtBot

from bots.telegram.replies import edit_advisory
from core.commands.messages import progress_message
from core.delivery.progress import ProgressCoalescer, show_held
from core.models.result import EventKind, ResultEvent
from core.tasks import cancel_and_wait

log = logging.getLogger(__name__)


class ProgressDisplay:
    def __init__(self, bot: ExtBot[Any], interval_s: float) -> None:
        self.bot = bot
        self.coalescer: ProgressCoalescer[str, ResultEvent] = ProgressCoalescer(interval_s)
        self._timer: asyncio.Task[None] | None = None

    async def show(self, chat_id: int, event: ResultEvent) -> None:
        """Show a STARTED or PROGRESS event now, or hold it until its status message's interval ends."""
        if self.coalescer.ended(event.request_id):
            return
        if event.kind is EventKind.STARTED:
            await self._chat_action(chat_id, event)
        ready = self.coalescer.offer(event.request_id, event, time.monotonic())
        if ready is not None:
            await self._edit(ready)
        elif self._timer is None or self._timer.done():
            self._timer = asyncio.create_task(
                show_held(self.coalescer, lambda _, held: self._edit(held)), name="telegram-progress"
            )

    def end(self, request_id: str) -> None:
        """The request has ended (its result is being delivered): none of its progress is shown any more."""
        self.coalescer.end(request_id)

    async def close(self) -> None:
        """Drop what is held (the bot is stopping)."""
        if self._timer is not None:
            await cancel_and_wait(self._timer)
            self._timer = None

    async def _chat_action(self, chat_id: int, event: ResultEvent) -> None:
        try:
            await self.bot.send_chat_action(chat_id, ChatAction.UPLOAD_PHOTO)
        except TelegramError as exc:
            log.debug("request %s: chat action not shown (%s)", event.request_id, exc)

    async def _edit(self, event: ResultEvent) -> None:
        chat_id = int(event.reply_to["chat_id"])
        if event.kind is EventKind.PROGRESS:
            await self._chat_action(chat_id, event)  # keeps "uploading photo" showing on long renders
        status = event.reply_to.get("status_message_id")
        if status and not self.coalescer.ended(event.request_id):
            await edit_advisory(self.bot, chat_id, status, progress_message(event))
