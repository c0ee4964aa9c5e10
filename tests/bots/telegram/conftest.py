"""A Telegram bot under test: the real PTB Application against the Bot API emulator, over the real pipeline."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from PIL import Image
from pydantic import SecretStr

from bots.telegram import Tuning, run_telegram_bot
from bots.telegram.rate_limiter import RateLimits
from core import constants as c
from core.jobs.workers import WorkerInfo, WorkerRegistry
from core.models.catalog import BackendKind
from core.models.request import GenerationRequest, Platform, Requester
from core.settings import Settings, TelegramSettings
from core.storage.factory import build_store
from moderation.factory import build_image_moderator
from tests.emulators.telegram_api import Chat, Sent, TelegramEmulator, User
from tests.emulators.telegram_fixture import telegram_emulator_fixture  # noqa: F401
from tests.pipeline_fixture import Pipeline, pipeline  # noqa: F401
from tests.settings import with_settings
from worker.backend import GeneratedImage, Generation, ProgressCallback
from worker.context import WorkerContext
from worker.jobs import generate

FAST = Tuning(
    rate_limits=RateLimits(min_interval_s=0.0, group_per_minute=1000),
    progress_interval_s=0.0,
    preview_photo_min_left_s=3600.0,  # no live preview's photo unless a test asks (a loaded machine renders slowly)
    poll_timeout_s=1,
    event_block_ms=100,
    stop_grace_s=2.0,
)
ALICE = User(1001, "Alice", "alice")
BOB = User(1002, "Bob", "bob")
MONA = User(1003, "Mona", "mona")  # an administrator of GROUP (MOD there) — make her one with `make_admin`
OLGA = User(1009, "Olga", "olga")  # an owner of the bot, from settings
ALICE_DM = Chat(ALICE.id)
GROUP = Chat(-100500, "supergroup", "Artists")
BUTTON_ID = re.compile(r"^ib:[a-z0-9]{1,2}:(?P<request_id>[a-z2-7]{16})(?::\d)?$")


@dataclass
class TelegramBot:
    emulator: TelegramEmulator
    pipeline: Pipeline
    settings: Settings
    tuning: Tuning = FAST
    task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        runtime = self.pipeline.runtime
        commands_set = self.emulator.count("setMyCommands")
        self.task = asyncio.create_task(
            run_telegram_bot(
                self.settings,
                runtime.service,
                runtime.redis,
                admin=runtime.admin,
                consumer_name="tg-test",
                tuning=self.tuning,
            )
        )
        await self.emulator.wait_for(lambda: self.emulator.count("setMyCommands") > commands_set, 10)

    async def stop(self) -> None:
        if self.task is not None:
            await self.emulator.release_polls()  # don't wait out the long poll in progress
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
            self.task = None
            await self.emulator.release_polls(False)

    async def announce_idle_worker(self) -> None:
        """A worker heartbeat with no worker behind it: requests are accepted and wait in the queue."""
        registry = WorkerRegistry(self.pipeline.runtime.redis)
        await registry.beat(WorkerInfo("busy-elsewhere", c.QUEUE_GPU, ("tiny",), time.time()))

    async def command(self, chat: Chat, user: User, text: str, **extra: Any) -> Sent:
        """`user` sends `text` in `chat` (extra: reply_to, mentions); the bot's first reply to it."""
        asked = await self.emulator.user_message(chat, user, text, **extra)
        return await self.reply_to(chat, asked)

    async def reply_to(
        self, chat: Chat, asked: dict[str, Any], *, prefix: str = "", within: float = 10
    ) -> Sent:
        """The bot's first text message in reply to `asked` (and starting with `prefix`)."""
        return await self.emulator.wait_for(
            lambda: next(
                (
                    s
                    for s in self.emulator.in_chat(chat.id, "sendMessage")
                    if s.reply_to == asked["message_id"] and s.shown.startswith(prefix)
                ),
                None,
            ),
            within,
        )

    async def photo_reply(self, chat: Chat, to: dict[str, object], within: float = 20) -> Sent:
        """The photo the bot sends in reply to a user message."""
        return await self.emulator.wait_for(
            lambda: next(
                (
                    s
                    for s in self.emulator.in_chat(chat.id, "sendPhoto")
                    if s.reply_to == to["message_id"] and not s.silent  # a live preview's photo is silent
                ),
                None,
            ),
            within,
        )


class Pictures:
    """A backend that draws given pictures (one per seed), so a test knows what each image is."""

    name = "diffusers"

    def __init__(self, *pictures: Image.Image) -> None:
        self.pictures = pictures

    async def generate(
        self,
        request: GenerationRequest,
        source: Image.Image | None,
        on_progress: ProgressCallback | None = None,
    ) -> Generation:
        images = tuple(GeneratedImage(p, seed) for p, seed in zip(self.pictures, request.seeds, strict=True))
        return Generation(images=images, model="tiny", backend="diffusers")

    async def close(self) -> None:
        pass


async def render(bot: TelegramBot, request_id: str, *pictures: Image.Image) -> None:
    """Run a queued request's job as a worker would (image check, storage, result event), drawing `pictures`."""
    settings = bot.pipeline.settings
    worker = WorkerContext(
        settings=settings,
        queue_name=c.QUEUE_GPU,
        redis=bot.pipeline.runtime.redis,
        store=build_store(settings),
        backends={BackendKind.DIFFUSERS: Pictures(*pictures)},
        image_moderator=build_image_moderator(settings),
    )
    assert await generate({"imagebot": worker, "job_try": 1}, request_id) == "done"


async def last_request(bot: TelegramBot, user: User, chat: Chat | None = None) -> str:
    """The id of `user`'s latest request, as core recorded it (what /cancel acts on)."""
    requester = Requester(platform=Platform.TELEGRAM, user_id=str(user.id), chat_id=str((chat or user).id))
    return await bot.pipeline.runtime.service.last_request(requester)


def request_id_of(sent: Sent) -> str:
    match = BUTTON_ID.match(sent.callback_data()[0])
    assert match, sent.callback_data()
    return match["request_id"]


def bot_settings(
    emulator: TelegramEmulator,
    pipeline: Pipeline,  # noqa: F811
    **telegram: Any,
) -> Settings:
    """The pipeline's settings pointed at the emulator (`telegram`: more TelegramSettings, e.g. webhook_url)."""
    group = TelegramSettings(
        token=SecretStr(emulator.token),
        base_url=emulator.base_url,
        base_file_url=emulator.base_file_url,
        **telegram,
    )
    return with_settings(pipeline.settings, telegram=group, owners=[f"telegram:{OLGA.id}"])


@pytest.fixture
async def telegram_bot(
    telegram_emulator: TelegramEmulator,
    pipeline: Pipeline,  # noqa: F811
) -> AsyncIterator[TelegramBot]:
    """The bot, started, with no worker yet (call `await bot.pipeline.start_worker()` to render)."""
    bot = TelegramBot(telegram_emulator, pipeline, bot_settings(telegram_emulator, pipeline))
    await bot.start()
    try:
        yield bot
    finally:
        await bot.stop()
