"""A running Discord bot (the real discord.py client) against the emulator, over the real pipeline."""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from arq.connections import ArqRedis
from PIL import Image
from pydantic import SecretStr

from bots.discord import run_discord_bot
from cli.runtime import Runtime
from core import constants as c
from core.jobs.workers import WorkerInfo, WorkerRegistry
from core.keys import REQUEST_KEY
from core.models.request import GenerationRequest
from core.models.result import EventKind, ResultEvent, StoredImage
from core.service import ImagineService
from core.settings import DiscordSettings, Settings
from tests.emulators.discord_api import BOT_TOKEN, Call, DiscordEmulator, Interaction, Message
from tests.emulators.discord_fixture import discord_emulator_fixture  # noqa: F401
from tests.pipeline_fixture import Pipeline, pipeline  # noqa: F401
from tests.settings import with_settings


def discord_settings(settings: Settings, emulator: DiscordEmulator, sharded: bool = False) -> Settings:
    group = DiscordSettings(
        token=SecretStr(BOT_TOKEN),
        api_base=emulator.api_base,
        gateway_url=emulator.gateway_url,
        sharded=sharded,
    )
    return with_settings(settings, discord=group)


@dataclass
class BotRunner:
    """Starts and stops bot processes (as tasks) the way `imagebot discord` would run them."""

    pipeline: Pipeline
    emulator: DiscordEmulator
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def start(
        self, runtime: Runtime | None = None, *, sharded: bool = False, **options: Any
    ) -> asyncio.Task[None]:
        """Run a bot over the pipeline's runtime (or another one, e.g. with other settings).

        `sharded` runs AutoShardedClient, which IDENTIFYs once per shard the emulator recommends.
        """
        expected = self.emulator.identifies + (self.emulator.shards if sharded else 1)
        runtime = runtime or self.pipeline.runtime
        settings = discord_settings(runtime.settings, self.emulator, sharded=sharded)
        options.setdefault("admin", runtime.admin)
        options.setdefault("identify_interval_s", 0.0)
        task = asyncio.create_task(run_discord_bot(settings, runtime.service, runtime.redis, **options))
        self.tasks.append(task)
        async with asyncio.timeout(30):
            while self.emulator.identifies < expected or not self.emulator._sockets:
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


async def answer(emulator: DiscordEmulator, interaction: Interaction, within_s: float = 20) -> Message:
    """What the user was shown: the reply with text, or the ephemeral follow-up that replaced "thinking…"."""

    def shown() -> Message | None:
        original = emulator.original(interaction.token)
        if original is not None and not original.deleted and original.content:
            return original
        followups = emulator.followups(interaction.token)
        return followups[0] if followups else None

    message: Message = await emulator.wait_for(shown, within_s=within_s)
    return message


async def announce_worker(redis: ArqRedis) -> None:
    """A GPU worker's heartbeat with no worker behind it: jobs are accepted and stay in the queue."""
    await WorkerRegistry(redis).beat(WorkerInfo("announced", c.QUEUE_GPU, ("tiny",), started_at=0.0))


async def queue_depth(redis: ArqRedis) -> int:
    return int(await redis.zcard(c.QUEUE_GPU))


async def request_ids(redis: ArqRedis) -> set[str]:
    keys = await redis.keys(REQUEST_KEY.format(request_id="*"))
    return {key.decode().rsplit(":", 1)[-1] for key in keys}


def png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (30, 90, 160)).save(out, "PNG")
    return out.getvalue()


def edits(emulator: DiscordEmulator, token: str) -> list[Call]:
    return [call for call in emulator.calls_for(token, "original") if call.method == "PATCH"]


async def queued(bots: BotRunner, command: Interaction) -> GenerationRequest:
    """Wait until the command's reply shows its queue position; returns the stored request."""
    emulator = bots.emulator
    await emulator.wait_for(
        lambda: any(
            c.payload.get("content", "").startswith("Queued") for c in edits(emulator, command.token)
        ),
        within_s=20,
    )
    service = bots.pipeline.runtime.service
    for request_id in await request_ids(bots.pipeline.runtime.redis):
        request = await service.queue.load(request_id)
        if request.reply_to.get("interaction_id") == str(command.id):
            return request
    raise AssertionError(f"no stored request for interaction {command.id}")


async def done(service: ImagineService, request: GenerationRequest) -> ResultEvent:
    """The DONE event a worker would publish: one 64×64 image in the store."""
    key = await service.store.put(png(64, 64), "image/png")
    image = StoredImage(
        key=key, url=await service.store.url(key), width=64, height=64, seed=request.seeds[0], index=0
    )
    return ResultEvent(
        kind=EventKind.DONE,
        request_id=request.request_id,
        requester=request.requester,
        reply_to=request.reply_to,
        model=request.model,
        backend="diffusers",
        images=(image,),
    )
