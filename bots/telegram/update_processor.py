"""Updates of different chats are handled at once; one chat's updates one at a time, in the order they came.

python-telegram-bot handles updates one by one unless told otherwise, and its concurrent mode keeps no order:
a /cancel could run before the /imagine sent just before it. `ChatOrderedProcessor` is the `BaseUpdateProcessor`
given to `ApplicationBuilder().concurrent_updates(...)`: an update of a chat that is busy waits its turn behind
the ones before it, and takes no slot of its own meanwhile, so one chat's flood never holds up other chats.
At most `max_concurrent_updates` chats are served at once.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable
from typing import Any

from telegram import Update
from telegram.ext import BaseUpdateProcessor

log = logging.getLogger(__name__)


def chat_of(update: object) -> int | None:
    """The chat an update belongs to (None: it belongs to none, and waits for nothing)."""
    if isinstance(update, Update) and update.effective_chat is not None:
        return update.effective_chat.id
    return None


class ChatOrderedProcessor(BaseUpdateProcessor):
    def __init__(self, max_concurrent_updates: int = 256) -> None:
        super().__init__(max_concurrent_updates)
        self._waiting: dict[int, deque[Awaitable[Any]]] = {}  # chats being served → what waits its turn

    @property
    def chats_in_progress(self) -> int:
        return len(self._waiting)

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to release: a stopping Application waits for the updates in progress."""

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        chat = chat_of(update)
        if chat is None:
            await _handle(coroutine)
            return
        waiting = self._waiting.get(chat)
        if waiting is not None:  # the chat is busy: handled after the updates before it, in their slot
            waiting.append(coroutine)
            return
        self._waiting[chat] = waiting = deque()
        try:
            await _handle(coroutine)
            while waiting:
                await _handle(waiting.popleft())
        finally:
            del self._waiting[chat]
            for left in waiting:  # cancelled (the bot is stopping): never started
                close = getattr(left, "close", None)
                if close is not None:
                    close()


async def _handle(coroutine: Awaitable[Any]) -> None:
    """Handle one update; PTB's own error handlers have seen any error already, so one failure never stops
    the chat's queue."""
    try:
        await coroutine
    except Exception:
        log.exception("handling an update failed")
