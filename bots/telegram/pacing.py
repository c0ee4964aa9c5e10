"""Flood control: messages to one chat are spaced out, and Telegram's 429 `retry_after` is waited out.

Telegram allows about one message a second per chat and twenty a minute per group; beyond that it answers
429 with `retry_after`. Every call that posts into a chat goes through `Pacer.send`, which keeps one chat's
messages in order, waits its turn, and on `RetryAfter` sleeps as told and tries again, so no reply is lost.
"""

from __future__ import annotations

import asyncio
import datetime as dtm
import logging
import time
import warnings
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from telegram.error import RetryAfter

log = logging.getLogger(__name__)

T = TypeVar("T")

GROUP_WINDOW_S = 60.0


@dataclass(frozen=True)
class PacingLimits:
    min_interval_s: float = 1.0  # between two messages to one chat
    group_per_minute: int = 20  # messages to one group chat per minute
    max_attempts: int = 6  # tries of one call through 429 answers before giving up (the caller then retries)


def retry_seconds(exc: RetryAfter) -> float:
    """`RetryAfter.retry_after` in seconds, whether PTB gives an int or a timedelta."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PTB 22 deprecates the int form
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, dtm.timedelta) else float(value)


def is_group(chat_id: int) -> bool:
    return chat_id < 0  # Telegram gives groups, supergroups and channels negative ids


class Pacer:
    def __init__(self, limits: PacingLimits | None = None) -> None:
        self.limits = limits or PacingLimits()
        self._locks: defaultdict[int, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._next_at: dict[int, float] = {}
        self._recent: defaultdict[int, deque[float]] = defaultdict(deque)

    async def _wait_turn(self, chat_id: int) -> None:
        now = time.monotonic()
        wait = self._next_at.get(chat_id, 0.0) - now
        recent = self._recent[chat_id]
        while recent and recent[0] <= now - GROUP_WINDOW_S:
            recent.popleft()
        if is_group(chat_id) and len(recent) >= self.limits.group_per_minute:
            wait = max(wait, recent[0] + GROUP_WINDOW_S - now)
        if wait > 0:
            await asyncio.sleep(wait)

    def _sent(self, chat_id: int) -> None:
        now = time.monotonic()
        self._next_at[chat_id] = max(self._next_at.get(chat_id, 0.0), now + self.limits.min_interval_s)
        self._recent[chat_id].append(now)

    async def send(self, chat_id: int, call: Callable[[], Awaitable[T]], *, retry: bool = True) -> T:
        """Run `call` (one Bot API call into `chat_id`) in this chat's turn; retry it through 429 answers.

        With retry=False (advisory messages such as progress), a 429 is raised at once.
        """
        async with self._locks[chat_id]:
            attempt = 1
            while True:
                await self._wait_turn(chat_id)
                try:
                    result = await call()
                except RetryAfter as exc:
                    delay = retry_seconds(exc)
                    self._next_at[chat_id] = time.monotonic() + delay
                    if not retry or attempt >= self.limits.max_attempts:
                        raise
                    log.warning(
                        "Telegram flood control in chat %s: retrying in %.1f s (attempt %d)",
                        chat_id,
                        delay,
                        attempt,
                    )
                    attempt += 1
                    continue
                self._sent(chat_id)
                return result

    async def retry(self, call: Callable[[], Awaitable[T]]) -> T:
        """Run a call that posts nothing into a chat (answerCallbackQuery, getFile) through 429 answers."""
        attempt = 1
        while True:
            try:
                return await call()
            except RetryAfter as exc:
                if attempt >= self.limits.max_attempts:
                    raise
                attempt += 1
                await asyncio.sleep(retry_seconds(exc))
