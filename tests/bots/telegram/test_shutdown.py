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
from typing import Any

from bots.telegram import run_telegram_bot
from core.delivery.events import EventConsumer, EventPublisher
from core.models.ids import new_request_id
from core.models.request import Platform, Requester
from core.models.result import EventKind, ResultEvent
from tests.bots.telegram.conftest import FAST, TelegramBot
from tests.cancel_points import CancelPoints
from tests.emulators.telegram_api import Chat
from tests.settings import with_settings

MODS = Chat(-555, "supergroup", "Moderators")
STOPPED_WITHIN_S = 20.0  # a stop takes well under a second here; a bot that hangs fails the test
# A delivery in progress when the bot is told to stop may finish: the sweep never depends on the grace running out.
TUNING = replace(FAST, stop_grace_s=30.0)


class Sweep:
    def __init__(self, telegram_bot: TelegramBot) -> None:
        self.bot = telegram_bot
        self.emulator = telegram_bot.emulator
        self.publisher = EventPublisher(telegram_bot.pipeline.runtime.redis)
        self.notices: list[str] = []
        self.runs = 0

    async def publish(self, text: str) -> None:
        requester = Requester(platform=Platform.TELEGRAM, user_id="1", chat_id=str(MODS.id))
        notice = ResultEvent(
            kind=EventKind.NOTICE,
            request_id=new_request_id(),
            message=text,
            requester=requester,
            reply_to={"chat_id": str(MODS.id)},
        )
        await self.publisher.publish(notice)
        self.notices.append(text)

    def start(self, claim_idle_s: float = 3600.0) -> asyncio.Task[None]:
        """The bot, as a new consumer each time: a result an earlier (cancelled) run left behind is not in its
        way, so each run takes the same steps (the last run, claiming at once, delivers what they left)."""
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

    async def posted(self, text: str) -> None:
        await self.emulator.wait_for(lambda: any(s.text == text for s in self.emulator.in_chat(MODS.id)), 20)

    async def stopped(self, bot: asyncio.Task[None], where: str) -> None:
        done, _ = await asyncio.wait({bot}, timeout=STOPPED_WITHIN_S)
        assert done, f"the bot cancelled {where} did not stop"
        assert bot.cancelled(), bot.exception()
        polls = self.emulator.polls
        await self.emulator.release_polls()  # a poller still running would now call getUpdates at once, again
        await asyncio.sleep(0.05)
        assert self.emulator.polls == polls, f"the bot cancelled {where} stopped, its poller did not"
        await self.emulator.release_polls(False)

    async def sweep(self, functions: tuple[Callable[..., Any], ...], part: str) -> int:
        """Cancel the bot at each await of `functions` from its start on; returns how many awaits were swept."""
        with CancelPoints(*functions) as points:
            await self.publish(f"{part}: measured")
            before, bot = points.suspensions, self.start()
            await self.posted(f"{part}: measured")
            awaits = points.suspensions - before + 12  # the rest of the delivery, then an idle read or two
            bot.cancel()
            await self.stopped(bot, "when idle")
            for n in range(1, awaits + 1):
                await self.publish(f"{part}: {n}")
                bot = self.start()
                await self.cancel_at(points, bot, n, f"{part}: {n}")
                await self.stopped(bot, f"at await #{n} of its {part} ({points.where})")
        return awaits

    async def cancel_at(self, points: CancelPoints, bot: asyncio.Task[None], n: int, notice: str) -> None:
        """Cancel `bot` at the n-th await from now, or when it idles (its notice posted) before that."""
        points.cancel_at(bot, n)
        quiet, seen = 0, points.suspensions
        async with asyncio.timeout(STOPPED_WITHIN_S):
            while points.pending and not bot.done():
                await asyncio.sleep(0.01)
                quiet, seen = (quiet + 1 if points.suspensions == seen else 0), points.suspensions
                if quiet >= 5 and any(s.text == notice for s in self.emulator.in_chat(MODS.id)):
                    points.forget()
                    bot.cancel()

    async def sweep_shutdown(self) -> int:
        """Cancel the bot when idle, then again at each await of its shutdown (a second SIGTERM)."""
        with CancelPoints(run_telegram_bot, AsyncExitStack.aclose) as points:
            bot = self.start()
            await self.publish("shutdown: measured")
            await self.posted("shutdown: measured")
            before = points.suspensions
            bot.cancel()
            await self.stopped(bot, "when idle")
            awaits = points.suspensions - before + 2
            for n in range(1, awaits + 1):
                bot = self.start()
                await self.publish(f"shutdown: {n}")
                await self.posted(f"shutdown: {n}")
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

    last = sweep.start(claim_idle_s=0.001)  # what the cancelled runs left arrives now
    emulator = telegram_bot.emulator
    await emulator.wait_for(lambda: len(emulator.in_chat(MODS.id)) >= len(sweep.notices), 20)
    await asyncio.sleep(0.2)
    last.cancel()
    await sweep.stopped(last, "at the end")
    assert sorted(s.text or "" for s in emulator.in_chat(MODS.id)) == sorted(sweep.notices)  # each once
