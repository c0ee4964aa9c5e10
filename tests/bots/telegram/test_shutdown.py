"""A Telegram bot told to stop stops, wherever the cancel lands: no poller left taking messages for a bot that is
gone, and no reply lost or sent twice.

Each sweep starts the bot once per await of one part of it (its start-up; its result consumer delivering a
notice; its shutdown, cancelled a second time as a second SIGTERM would) and cancels it at that await. Before the
fix, a cancel reaching the consumer while it stopped its lease renewal was swallowed: the bot waited for the
consumer for ever and PTB went on polling (a CI run hung after the test had passed).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import replace

from bots.telegram import run_telegram_bot
from core.delivery.events import EventConsumer, EventPublisher
from core.models.request import Platform
from tests.bots.notice_sweep import STOP_GRACE_S, STOPPED_WITHIN_S, NoticeSweep
from tests.bots.telegram.conftest import FAST, TelegramBot
from tests.cancel_points import CancelPoints
from tests.emulators.telegram_api import Chat
from tests.settings import with_settings

MODS = Chat(-555, "supergroup", "Moderators")
TUNING = replace(FAST, stop_grace_s=STOP_GRACE_S)


class Sweep(NoticeSweep):
    platform = Platform.TELEGRAM

    def __init__(self, telegram_bot: TelegramBot) -> None:
        publisher = EventPublisher(telegram_bot.pipeline.runtime.redis)
        super().__init__(publisher, str(MODS.id), {"chat_id": str(MODS.id)})
        self.bot = telegram_bot
        self.emulator = telegram_bot.emulator

    def start(self, claim_idle_s: float = 3600.0) -> asyncio.Task[None]:
        runtime, self.runs = self.bot.pipeline.runtime, self.runs + 1
        return asyncio.create_task(
            run_telegram_bot(
                with_settings(self.bot.settings, delivery={"claim_idle_s": claim_idle_s}),
                runtime.service,
                runtime.redis,
                admin=runtime.admin,
                consumer_name=f"tg-run-{self.runs}",
                tuning=TUNING,
            )
        )

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        await self.emulator.wait_for(predicate, STOPPED_WITHIN_S)

    def posted(self, text: str) -> int:
        return sum(s.text == text for s in self.emulator.in_chat(MODS.id))

    async def also_stopped(self, where: str) -> None:
        polls = self.emulator.polls
        await self.emulator.release_polls()  # a poller still running would now call getUpdates at once, again
        await asyncio.sleep(0.05)
        assert self.emulator.polls == polls, f"the bot cancelled {where} stopped, its poller did not"
        await self.emulator.release_polls(False)

    async def sweep_shutdown(self) -> int:
        """Cancel the bot when idle, then again at each await of its shutdown (a second SIGTERM)."""
        with CancelPoints(run_telegram_bot, AsyncExitStack.aclose) as points:
            bot = self.start()
            await self.publish("shutdown: measured")
            await self.wait_posted("shutdown: measured")
            before = points.suspensions
            bot.cancel()
            await self.stopped(bot, "when idle")
            awaits = points.suspensions - before + 2
            for n in range(1, awaits + 1):
                bot = self.start()
                await self.publish(f"shutdown: {n}")
                await self.wait_posted(f"shutdown: {n}")
                bot.cancel()
                await self.cancel_at(points, bot, n, f"shutdown: {n}")
                await self.stopped(bot, f"again at await #{n} of its shutdown ({points.where})")
        return awaits


async def test_a_bot_cancelled_at_any_await_stops_polling_and_loses_no_reply(
    telegram_bot: TelegramBot,
) -> None:
    await telegram_bot.stop()  # the fixture's bot: each sweep starts its own
    sweep = Sweep(telegram_bot)
    assert await sweep.sweep((run_telegram_bot,), "start-up") > 10
    assert await sweep.sweep((EventConsumer.run,), "delivery") > 10
    assert await sweep.sweep_shutdown() > 3
    await sweep.deliver_what_was_left()
