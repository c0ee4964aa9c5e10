"""The rate limiter at PTB's seam: per-chat turns and spacing, group and overall limits, 429 retries, bounded state.

`process_request` is called as ExtBot calls it, with a coroutine standing for the HTTP request (PTB's documented
interface); the end-to-end 429 storm through the real client is in test_delivery.py.
"""

from __future__ import annotations

import asyncio
import datetime as dtm
import time
from typing import Any

import pytest
from telegram.error import RetryAfter

from bots.telegram.rate_limiter import NO_RETRIES, ChatRateLimiter, RateLimits, Retries, paced_chat

# RetryAfter's own constructor reads its deprecated int form; nothing here can avoid it.
pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Api:
    """Stands for the Bot API: records when each call was made; answers 429 to the first `refuse` calls."""

    def __init__(self, refuse: int = 0, retry_after: int = 1) -> None:
        self.calls: list[tuple[str, float]] = []
        self.refuse = refuse
        self.retry_after = retry_after

    async def call(self, label: str) -> dict[str, Any]:
        self.calls.append((label, time.monotonic()))
        if self.refuse:
            self.refuse -= 1
            raise RetryAfter(dtm.timedelta(seconds=self.retry_after))
        return {"ok": label}


async def send(
    limiter: ChatRateLimiter, api: Api, chat: int, label: str = "", retries: Retries | None = None
) -> Any:
    return await limiter.process_request(
        api.call, (label or str(chat),), {}, "sendMessage", {"chat_id": chat, "text": "hi"}, retries
    )


def test_only_calls_that_post_into_a_chat_take_a_turn() -> None:
    assert paced_chat("sendMessage", {"chat_id": 5}) == 5
    assert paced_chat("editMessageText", {"chat_id": "-100"}) == -100
    assert paced_chat("sendPhoto", {"chat_id": "@channel"}) == "@channel"
    assert paced_chat("sendChatAction", {"chat_id": 5}) is None
    assert paced_chat("answerCallbackQuery", {"callback_query_id": "1"}) is None
    assert paced_chat("getChatAdministrators", {"chat_id": -100}) is None
    assert paced_chat("deleteMessage", {"chat_id": 5}) is None


async def test_one_chats_messages_keep_their_order_and_spacing_while_other_chats_go_at_once() -> None:
    limiter, api = ChatRateLimiter(RateLimits(min_interval_s=0.2)), Api()
    await asyncio.gather(*(send(limiter, api, 1, f"a{i}") for i in range(3)), send(limiter, api, 2, "b0"))
    labels = [label for label, _ in api.calls]
    assert [label for label in labels if label.startswith("a")] == ["a0", "a1", "a2"]
    times = dict(api.calls)
    assert times["a1"] - times["a0"] >= 0.19 and times["a2"] - times["a1"] >= 0.19
    assert times["b0"] - times["a0"] < 0.1  # another chat does not wait for this one


async def test_a_group_gets_at_most_its_messages_per_minute() -> None:
    clock = FakeClock()
    limiter, api = ChatRateLimiter(RateLimits(min_interval_s=0.0, group_per_minute=3), clock=clock), Api()
    for _ in range(3):
        await send(limiter, api, -100)
    fourth = asyncio.create_task(send(limiter, api, -100))
    await asyncio.sleep(0.05)
    assert len(api.calls) == 3 and not fourth.done()  # waits for the oldest to leave the minute
    await send(limiter, api, 7)  # a private chat is not held up by the group
    assert len(api.calls) == 4
    fourth.cancel()


async def test_429_is_waited_out_and_retried_and_advisory_calls_give_up_at_once() -> None:
    limiter, api = ChatRateLimiter(RateLimits(min_interval_s=0.0)), Api(refuse=2, retry_after=1)
    started = time.monotonic()
    assert await send(limiter, api, 1, "kept") == {"ok": "kept"}
    assert len(api.calls) == 3 and time.monotonic() - started >= 1.9  # retry_after honoured twice

    advisory = Api(refuse=1)
    with pytest.raises(RetryAfter):
        await send(limiter, advisory, 2, "progress", retries=NO_RETRIES)
    assert len(advisory.calls) == 1

    stubborn = Api(refuse=10)
    with pytest.raises(RetryAfter):
        await send(ChatRateLimiter(RateLimits(min_interval_s=0.0, max_retries=1)), stubborn, 3)
    assert len(stubborn.calls) == 2


async def test_the_overall_limit_allows_a_burst_then_spaces_calls() -> None:
    limiter, api = ChatRateLimiter(RateLimits(min_interval_s=0.0, overall_per_second=10)), Api()
    started = time.monotonic()
    await asyncio.gather(*(send(limiter, api, chat) for chat in range(1, 16)))
    times = sorted(at - started for _, at in api.calls)
    assert times[9] < 0.2  # the first ten at once
    assert times[14] >= 0.45  # the next five at ten a second


async def test_state_is_kept_only_for_chats_whose_limits_still_apply() -> None:
    """Defect 25: a limiter that served 20,000 chats kept state for every one of them."""
    clock = FakeClock()
    limiter = ChatRateLimiter(RateLimits(min_interval_s=1.0, max_chats=500), clock=clock)
    api = Api()
    for chat in range(1, 10_001):
        await send(limiter, api, chat)  # private chats: a second's spacing
        await send(limiter, api, -chat)  # groups: a minute's count
        clock.now += 0.001
    assert limiter.chats_tracked <= 500  # never more than the cap, however many chats were served
    clock.now += 61.0  # every limit has lapsed
    await send(limiter, api, 424242)
    assert limiter.chats_tracked == 1

    # While a chat's limits still apply it is remembered, and its spacing holds.
    await send(limiter, api, 99)
    clock.now += 0.5
    assert limiter.chats_tracked == 2
    waiting = asyncio.create_task(send(limiter, api, 99, "too soon"))
    await asyncio.sleep(0.2)
    assert not waiting.done()  # 0.5 s of its 1 s interval are still to go
    waiting.cancel()
