"""A running Discord bot (the real discord.py client) against the emulator, over the real pipeline."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from pydantic import SecretStr

from bots.discord import run_discord_bot
from core.settings import DiscordSettings, Settings
from tests.emulators.discord_api import BOT_TOKEN, DiscordEmulator
from tests.emulators.discord_fixture import discord_emulator_fixture  # noqa: F401
from tests.pipeline_fixture import Pipeline, pipeline  # noqa: F401


def discord_settings(settings: Settings, emulator: DiscordEmulator) -> Settings:
    group = DiscordSettings(
        token=SecretStr(BOT_TOKEN), api_base=emulator.api_base, gateway_url=emulator.gateway_url
    )
    return settings.model_copy(update={"discord": group})


@dataclass
class BotRunner:
    """Starts and stops bot processes (as tasks) the way `imagebot discord` would run them."""

    pipeline: Pipeline
    emulator: DiscordEmulator
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def start(self, **options: Any) -> asyncio.Task[None]:
        before = self.emulator.identifies
        settings = discord_settings(self.pipeline.settings, self.emulator)
        runtime = self.pipeline.runtime
        task = asyncio.create_task(run_discord_bot(settings, runtime.service, runtime.redis, **options))
        self.tasks.append(task)
        async with asyncio.timeout(10):
            while self.emulator.identifies == before or not self.emulator._sockets:
                if task.done():
                    task.result()
                await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)  # READY and GUILD_CREATE processed
        return task

    async def stop(self, task: asyncio.Task[None]) -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        self.tasks.remove(task)

    async def stop_all(self) -> None:
        for task in list(self.tasks):
            await self.stop(task)


@pytest.fixture
async def bots(pipeline: Pipeline, discord_emulator: DiscordEmulator) -> AsyncIterator[BotRunner]:  # noqa: F811
    runner = BotRunner(pipeline, discord_emulator)
    try:
        yield runner
    finally:
        await runner.stop_all()
