"""Flood control at python-telegram-bot's own seam: every Bot API call passes through `ChatRateLimiter`.

Telegram allows about one message a second per chat and twenty a minute per group; beyond that it answers
429 with `retry_after`. The limiter is given to `ApplicationBuilder().rate_limiter(...)`, so handlers call the
bot as usual and:

- a call that posts into a chat (send…, edit…, copy…, forward…; not sendChatAction) takes that chat's turn:
  one at a time, in the order the calls were made, at least `min_interval_s` apart, and at most
  `group_per_minute` a minute in a group; optionally at most `overall_per_second` across all chats;
- any call answered 429 is tried again after `retry_after`, up to `max_retries` times; `rate_limit_args=Retries(N)`
  on one call allows N retries instead (NO_RETRIES for advisory edits such as progress: a 429 is raised at once).
  It is an object, not a bare int, because ExtBot drops a falsy `rate_limit_args`: a plain 0 would mean the default;
- every error Telegram answers is counted in imagebot_platform_api_errors_total{platform="telegram"} (by
  kind: RetryAfter, Forbidden, BadRequest…), and every second spent waiting, on a 429 or for a chat's turn,
  in imagebot_rate_limit_wait_seconds_total;
- what it remembers about a chat is forgotten once the chat's limits no longer depend on it (one interval, or
  a minute for a group), and at most `max_chats` idle chats are kept, so a bot that served millions of chats
  holds state only for the ones it is talking to now.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dtm
import logging
import time
import warnings
from collections import OrderedDict, deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from telegram.error import RetryAfter, TelegramError
from telegram.ext import BaseRateLimiter

from core import metrics

log = logging.getLogger(__name__)

GROUP_WINDOW_S = 60.0
UNPACED = frozenset({"sendChatAction"})  # starts with "send" but posts nothing
PACED_PREFIXES = ("send", "edit", "copy", "forward")

ApiResult = bool | dict[str, Any] | list[dict[str, Any]]
ApiCall = Callable[..., Coroutine[Any, Any, ApiResult]]


@dataclass(frozen=True)
class Retries:
    """`rate_limit_args` for one call: how many times a 429 is waited out before it reaches the caller."""

    count: int


NO_RETRIES = Retries(0)  # advisory calls (progress, queue position): a 429 is raised at once


@dataclass(frozen=True)
class RateLimits:
    min_interval_s: float = 1.0  # between two messages to one chat
    group_per_minute: int = 20  # messages to one group chat per minute
    max_retries: int = 5  # tries after a 429 before the error reaches the caller (who may retry later)
    overall_per_second: int | None = None  # across all chats (Telegram's broadcast limit is about 30)
    max_chats: int = 10_000  # idle chats remembered at most


def retry_seconds(exc: RetryAfter) -> float:
    """`RetryAfter.retry_after` in seconds, whether PTB gives an int or a timedelta."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PTB 22 deprecates the int form
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, dtm.timedelta) else float(value)


def paced_chat(endpoint: str, data: dict[str, Any]) -> int | str | None:
    """The chat a call posts into, or None for calls that take no turn (answers, getFile, chat actions)."""
    if endpoint in UNPACED or not endpoint.startswith(PACED_PREFIXES):
        return None
    chat = data.get("chat_id")
    if chat is None:
        return None
    with contextlib.suppress(TypeError, ValueError):
        return int(chat)
    return str(chat)  # "@channelname"


def is_group(chat: int | str) -> bool:
    return not isinstance(chat, int) or chat < 0  # groups, supergroups and channels have negative ids


def _counted(callback: ApiCall) -> ApiCall:
    """The call, with every error Telegram answers counted by kind."""

    async def call(*args: Any, **kwargs: Any) -> ApiResult:
        try:
            return await callback(*args, **kwargs)
        except TelegramError as exc:
            metrics.PLATFORM_ERRORS.labels(platform="telegram", kind=type(exc).__name__).inc()
            raise

    return call


async def _wait(seconds: float) -> None:
    metrics.RATE_LIMIT_WAIT_SECONDS.labels(platform="telegram").inc(seconds)
    await asyncio.sleep(seconds)


class _ChatTurns:
    """One chat's turn: a FIFO lock, when it may next post, and its posts of the last minute (groups)."""

    __slots__ = ("expires_at", "lock", "next_at", "recent", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.next_at = 0.0
        self.recent: deque[float] = deque()
        self.users = 0  # calls holding or waiting for the lock
        self.expires_at = 0.0  # after this, nothing here limits the chat any more


class ChatRateLimiter(BaseRateLimiter[Retries]):
    """A `BaseRateLimiter`: per-chat turns and spacing, group and overall limits, 429 retries; bounded state."""

    def __init__(self, limits: RateLimits | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits or RateLimits()
        self.clock = clock
        self._chats: OrderedDict[int | str, _ChatTurns] = OrderedDict()  # least recently used first
        self._overall_tat = 0.0  # theoretical arrival time of the overall limit (GCRA)

    @property
    def chats_tracked(self) -> int:
        return len(self._chats)

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        self._chats.clear()

    async def process_request(
        self,
        callback: ApiCall,
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: Retries | None,
    ) -> ApiResult:
        retries = self.limits.max_retries if rate_limit_args is None else rate_limit_args.count
        chat = paced_chat(endpoint, data)
        if chat is None:
            return await self._with_retries(_counted(callback), args, kwargs, endpoint, retries)
        turns = self._turns(chat)
        turns.users += 1
        try:
            async with turns.lock:
                return await self._paced(turns, chat, _counted(callback), args, kwargs, endpoint, retries)
        finally:
            turns.users -= 1
            self._forget_idle()

    async def _with_retries(
        self, callback: ApiCall, args: Any, kwargs: dict[str, Any], endpoint: str, retries: int
    ) -> ApiResult:
        attempt = 0
        while True:
            try:
                return await callback(*args, **kwargs)
            except RetryAfter as exc:
                if attempt >= retries:
                    raise
                attempt += 1
                delay = retry_seconds(exc)
                log.warning(
                    "Telegram flood control on %s: retrying in %.1f s (retry %d)", endpoint, delay, attempt
                )
                await _wait(delay)

    async def _paced(
        self,
        turns: _ChatTurns,
        chat: int | str,
        callback: ApiCall,
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        retries: int,
    ) -> ApiResult:
        attempt = 0
        while True:
            await self._wait_turn(turns, chat)
            try:
                result = await callback(*args, **kwargs)
            except RetryAfter as exc:
                delay = retry_seconds(exc)
                turns.next_at = self.clock() + delay
                turns.expires_at = max(turns.expires_at, turns.next_at)
                if attempt >= retries:
                    raise
                attempt += 1
                log.warning(
                    "Telegram flood control in chat %s (%s): retrying in %.1f s (retry %d)",
                    chat,
                    endpoint,
                    delay,
                    attempt,
                )
                continue
            self._posted(turns, chat)
            return result

    async def _wait_turn(self, turns: _ChatTurns, chat: int | str) -> None:
        now = self.clock()
        wait = turns.next_at - now
        recent = turns.recent
        while recent and recent[0] <= now - GROUP_WINDOW_S:
            recent.popleft()
        if is_group(chat) and len(recent) >= self.limits.group_per_minute:
            wait = max(wait, recent[0] + GROUP_WINDOW_S - now)
        wait = max(wait, self._overall_wait(now + max(wait, 0.0)))
        if wait > 0:
            await _wait(wait)

    def _overall_wait(self, at: float) -> float:
        """Reserve a slot under the overall limit (a leaky bucket allowing bursts of its size); seconds to wait."""
        per_second = self.limits.overall_per_second
        if not per_second:
            return 0.0
        interval, burst = 1.0 / per_second, (per_second - 1) / per_second
        tat = max(self._overall_tat, at)
        self._overall_tat = tat + interval
        return max(0.0, tat - burst - self.clock())

    def _posted(self, turns: _ChatTurns, chat: int | str) -> None:
        now = self.clock()
        turns.next_at = max(turns.next_at, now + self.limits.min_interval_s)
        turns.expires_at = turns.next_at
        if is_group(chat):
            turns.recent.append(now)
            while len(turns.recent) > self.limits.group_per_minute:
                turns.recent.popleft()
            turns.expires_at = max(turns.expires_at, now + GROUP_WINDOW_S)

    def _turns(self, chat: int | str) -> _ChatTurns:
        turns = self._chats.get(chat)
        if turns is None:
            turns = self._chats[chat] = _ChatTurns()
        self._chats.move_to_end(chat)
        return turns

    def _forget_idle(self) -> None:
        """Drop chats nobody is posting to whose limits have lapsed, least recently used first; beyond
        `max_chats`, drop the least recently used idle ones even if their limits have not lapsed."""
        now = self.clock()
        for _ in range(len(self._chats)):
            chat, turns = next(iter(self._chats.items()))
            if turns.users:  # in use: it counts as recently used
                self._chats.move_to_end(chat)
                continue
            if turns.expires_at > now and len(self._chats) <= self.limits.max_chats:
                return
            del self._chats[chat]
