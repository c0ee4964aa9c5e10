"""Updates are handled concurrently across chats and in order within one (defect 37: 100 users in one batch
were acknowledged at about 8 a second, p50 6.4 s and p99 12.6 s)."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
from telegram import Update

from bots.telegram.rate_limiter import RateLimits
from bots.telegram.update_processor import ChatOrderedProcessor
from core import constants as c
from tests.bots.telegram.conftest import ALICE, ALICE_DM, FAST, TelegramBot, bot_settings
from tests.emulators.telegram_api import Chat, TelegramEmulator, User
from tests.pipeline_fixture import Pipeline

USERS = 100
P50_BOUND_S, P99_BOUND_S = 3.0, 5.0  # the old figures: 6.4 s and 12.6 s (7.1 s and 14.2 s measured here)


@pytest.fixture
async def real_limits_bot(
    telegram_emulator: TelegramEmulator, pipeline: Pipeline
) -> AsyncIterator[TelegramBot]:
    """The bot with Telegram's real flood limits (a second between messages to one chat), a worker announced."""
    bot = TelegramBot(
        telegram_emulator,
        pipeline,
        bot_settings(telegram_emulator, pipeline),
        tuning=replace(FAST, rate_limits=RateLimits()),
    )
    await bot.start()
    await bot.announce_idle_worker()
    try:
        yield bot
    finally:
        await bot.stop()


async def test_a_burst_from_100_users_in_one_batch_is_acknowledged_at_once(
    real_limits_bot: TelegramBot, capsys: pytest.CaptureFixture[str]
) -> None:
    emulator = real_limits_bot.emulator
    users = [User(5000 + i, f"User {i}", f"user_{i:03d}") for i in range(USERS)]
    started = time.monotonic()
    asked = await emulator.burst(
        [(Chat(user.id), user, f"/imagine lighthouse number {i} --n 1") for i, user in enumerate(users)]
    )

    def acknowledgements() -> list[float] | None:
        firsts = {}
        for sent in emulator.sent:
            if sent.method == "sendMessage" and sent.chat_id not in firsts:
                firsts[sent.chat_id] = sent.at - started
        return sorted(firsts.values()) if len(firsts) == USERS else None

    latencies = await emulator.wait_for(acknowledgements, timeout=120)
    assert emulator.batches[-1] == USERS  # all 100 came in one getUpdates answer
    p50, p99 = statistics.median(latencies), latencies[int(0.99 * USERS) - 1]
    with capsys.disabled():
        print(
            f"\n{USERS} users in one batch acknowledged: p50 {p50:.2f} s, p99 {p99:.2f} s, max {latencies[-1]:.2f} s"
        )
    assert p50 < P50_BOUND_S and p99 < P99_BOUND_S
    for user, message in zip(users, asked, strict=True):  # each acknowledged the usual way, in its own chat
        status = next(s for s in emulator.in_chat(user.id, "sendMessage"))
        assert status.reply_to == message["message_id"] and status.history[0] == "Queued…"
    await emulator.wait_for(
        lambda: all(
            s.shown.startswith("Queued — position") for s in emulator.sent if s.method == "sendMessage"
        ),
        timeout=60,
    )
    assert await real_limits_bot.pipeline.runtime.redis.zcard(c.QUEUE_GPU) == USERS


async def test_one_chats_updates_are_handled_in_the_order_they_came(real_limits_bot: TelegramBot) -> None:
    """An /imagine and a /cancel in one batch: the /cancel cancels that request (it ran after it)."""
    bot, emulator = real_limits_bot, real_limits_bot.emulator
    first, second, cancel = await emulator.burst(
        [
            (ALICE_DM, ALICE, "/imagine a red fox --n 1"),
            (ALICE_DM, ALICE, "/imagine a blue fox --n 1"),
            (ALICE_DM, ALICE, "/cancel"),
        ]
    )
    cancelled = await bot.reply_to(ALICE_DM, cancel, within=30)
    assert cancelled.shown == "Cancelled your last request."
    blue = await bot.reply_to(ALICE_DM, second)
    await emulator.wait_for(lambda: blue.shown == "Cancelled before it started.", timeout=30)
    red = await bot.reply_to(ALICE_DM, first)
    assert red.shown.startswith("Queued — position 1")
    replies = [s.reply_to for s in emulator.in_chat(ALICE_DM.id, "sendMessage")]
    assert replies == [first["message_id"], second["message_id"], cancel["message_id"]]
    assert await bot.pipeline.runtime.redis.zcard(c.QUEUE_GPU) == 1


def message_update(update_id: int, chat_id: int) -> Update:
    data = {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": 0,
            "chat": {"id": chat_id, "type": "private"},
            "from": {"id": chat_id, "is_bot": False, "first_name": "A"},
            "text": "hi",
        },
    }
    update = Update.de_json(data, None)
    assert update is not None
    return update


async def test_a_flooding_chat_takes_one_slot_so_other_chats_are_not_held_up() -> None:
    processor, done = ChatOrderedProcessor(max_concurrent_updates=2), []

    async def handle(name: str) -> None:
        await asyncio.sleep(0.05)
        done.append(name)

    flood = [processor.process_update(message_update(i, 1), handle(f"a{i}")) for i in range(6)]
    other = processor.process_update(message_update(99, 2), handle("b"))
    await asyncio.gather(*flood, other)
    assert [name for name in done if name.startswith("a")] == [f"a{i}" for i in range(6)]  # in order
    assert done.index("b") <= 1  # served alongside the flood's first update, not after all six
    assert processor.chats_in_progress == 0
