"""A Discord bot told to stop lets the delivery in hand finish: a result is posted once, across a restart.

The sweep starts the bot (the real discord.py client against the emulator) once per await of its result consumer
delivering a notice, and cancels it at that await, as a SIGTERM landing there would. Before the fix the consumer
was cancelled outright: a reply already on its way was posted, its delivered marker never written, and the next
start posted it again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from bots.discord import run_discord_bot
from bots.discord.app import _Lifecycle
from core.delivery.events import EventPublisher
from core.models.request import Platform
from tests.bots.discord.conftest import discord_settings
from tests.bots.notice_sweep import STOP_GRACE_S, STOPPED_WITHIN_S, NoticeSweep
from tests.emulators.discord_api import DiscordEmulator
from tests.pipeline_fixture import Pipeline
from tests.settings import with_settings


class Sweep(NoticeSweep):
    platform = Platform.DISCORD

    def __init__(self, pipeline: Pipeline, emulator: DiscordEmulator) -> None:
        channel = str(emulator.channel_id)
        super().__init__(EventPublisher(pipeline.runtime.redis), channel, {"channel_id": channel})
        self.runtime = pipeline.runtime
        self.emulator = emulator

    def start(self, claim_idle_s: float = 3600.0) -> asyncio.Task[None]:
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

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        await self.emulator.wait_for(predicate, STOPPED_WITHIN_S)

    def posted(self, text: str) -> int:
        return sum(m.content == text for m in self.emulator.channel_messages(self.emulator.channel_id))


async def test_a_result_being_delivered_when_the_bot_stops_is_posted_once_across_a_restart(
    pipeline: Pipeline, discord_emulator: DiscordEmulator
) -> None:
    sweep = Sweep(pipeline, discord_emulator)
    assert await sweep.sweep((_Lifecycle.consume,), "delivery") > 10
    await sweep.deliver_what_was_left()
