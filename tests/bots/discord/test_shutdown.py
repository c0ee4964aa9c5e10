"""A Discord bot told to stop lets the delivery in hand finish: a result is posted once, across a restart.

The sweep starts the bot (the real discord.py client against the emulator) once per await of its result consumer
delivering a notice, and cancels it at that await, as a SIGTERM landing there would. Before the fix the consumer
was cancelled outright: a reply already on its way was posted, its delivered marker never written, and the next
start posted it again.
"""

from __future__ import annotations

import asyncio

from bots.discord import run_discord_bot
from bots.discord.app import _Lifecycle
from core.delivery.events import EventPublisher
from core.models.ids import new_request_id
from core.models.request import Platform, Requester
from core.models.result import EventKind, ResultEvent
from tests.bots.discord.conftest import discord_settings
from tests.cancel_points import CancelPoints
from tests.emulators.discord_api import DiscordEmulator
from tests.pipeline_fixture import Pipeline
from tests.settings import with_settings

STOPPED_WITHIN_S = 20.0  # a stop takes well under a second here; a bot that hangs fails the test
STOP_GRACE_S = 30.0  # the sweep never depends on the grace running out


class Sweep:
    def __init__(self, pipeline: Pipeline, emulator: DiscordEmulator) -> None:
        self.runtime = pipeline.runtime
        self.emulator = emulator
        self.channel = emulator.channel_id
        self.publisher = EventPublisher(self.runtime.redis)
        self.notices: list[str] = []
        self.runs = 0

    async def publish(self, text: str) -> None:
        requester = Requester(platform=Platform.DISCORD, user_id="1", chat_id=str(self.channel))
        notice = ResultEvent(
            kind=EventKind.NOTICE,
            request_id=new_request_id(),
            message=text,
            requester=requester,
            reply_to={"channel_id": str(self.channel)},
        )
        await self.publisher.publish(notice)
        self.notices.append(text)

    def start(self, claim_idle_s: float = 3600.0) -> asyncio.Task[None]:
        """The bot, as a new consumer each time: a result an earlier (cancelled) run left behind is not in its
        way, so each run takes the same steps (the last run, claiming at once, delivers what they left)."""
        self.runs += 1
        settings = with_settings(
            discord_settings(self.runtime.settings, self.emulator), delivery={"claim_idle_s": claim_idle_s}
        )
        return asyncio.create_task(
            run_discord_bot(
                settings,
                self.runtime.service,
                self.runtime.redis,
                admin=self.runtime.admin,
                consumer_name=f"dc-run-{self.runs}",
                identify_interval_s=0.0,
                stop_grace_s=STOP_GRACE_S,
            )
        )

    def posted(self, text: str) -> int:
        return sum(m.content == text for m in self.emulator.channel_messages(self.channel))

    async def stopped(self, bot: asyncio.Task[None], where: str) -> None:
        done, _ = await asyncio.wait({bot}, timeout=STOPPED_WITHIN_S)
        if not done:
            import sys

            bot.print_stack(file=sys.stdout)
            for t in asyncio.all_tasks():
                print("TASK", t.get_name(), t.get_coro())
                t.print_stack(limit=6, file=sys.stdout)
        assert done, f"the bot cancelled {where} did not stop"
        assert bot.cancelled(), bot.exception()

    async def cancel_at(self, points: CancelPoints, bot: asyncio.Task[None], n: int, notice: str) -> None:
        """Cancel `bot` at the n-th await from now, or when it idles (its notice posted) before that."""
        points.cancel_at(bot, n)
        quiet, seen = 0, points.suspensions
        async with asyncio.timeout(STOPPED_WITHIN_S):
            while points.pending and not bot.done():
                await asyncio.sleep(0.01)
                quiet, seen = (quiet + 1 if points.suspensions == seen else 0), points.suspensions
                if quiet >= 5 and self.posted(notice):
                    points.forget()
                    bot.cancel()

    async def sweep(self) -> int:
        """Cancel the bot at each await of its result consumer from its start on; returns how many were swept."""
        with CancelPoints(_Lifecycle.consume) as points:
            await self.publish("measured")
            before, bot = points.suspensions, self.start()
            await self.emulator.wait_for(lambda: self.posted("measured"), STOPPED_WITHIN_S)
            awaits = points.suspensions - before + 12  # the rest of the delivery, then an idle read or two
            bot.cancel()
            await self.stopped(bot, "when idle")
            for n in range(1, awaits + 1):
                await self.publish(f"delivery: {n}")
                bot = self.start()
                await self.cancel_at(points, bot, n, f"delivery: {n}")
                await self.stopped(bot, f"at await #{n} of its consumer ({points.where})")
        return awaits


async def test_a_result_being_delivered_when_the_bot_stops_is_posted_once_across_a_restart(
    pipeline: Pipeline, discord_emulator: DiscordEmulator
) -> None:
    sweep = Sweep(pipeline, discord_emulator)
    assert await sweep.sweep() > 10

    last = sweep.start(claim_idle_s=0.001)  # what the cancelled runs left arrives now
    channel = sweep.channel
    await discord_emulator.wait_for(
        lambda: len(discord_emulator.channel_messages(channel)) >= len(sweep.notices), STOPPED_WITHIN_S
    )
    await asyncio.sleep(0.2)
    last.cancel()
    await sweep.stopped(last, "at the end")
    posted = sorted(m.content or "" for m in discord_emulator.channel_messages(channel))
    assert posted == sorted(sweep.notices)  # each once
