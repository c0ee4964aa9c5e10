"""Redis failover under load: a primary, a replica and three Sentinels; the primary is SIGKILLed mid-stream.

A Telegram bot (the real PTB Application against the emulator) and a worker (the real arq worker on the tiny
model), both in this process and both configured with the Sentinel URL only, serve a stream of users' /imagine
messages. A third of the way in the primary is killed. Every message then ends one way: its picture delivered
once, or an apology telling the user to try again (the bot could not reach Redis while it was queueing). Nothing
the bot acknowledged as queued is lost and nothing is delivered twice; the figures are printed.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydantic import SecretStr

from bots.telegram import Tuning, run_telegram_bot
from bots.telegram.rate_limiter import RateLimits
from cli.runtime import open_runtime
from core import constants as c
from core.jobs.workers import WorkerRegistry
from core.settings import Settings
from tests.emulators.telegram_api import Chat, TelegramEmulator, User
from tests.emulators.telegram_fixture import telegram_emulator_fixture  # noqa: F401
from tests.sentinel_cluster import SentinelCluster
from tests.settings import with_settings
from worker.main import run_workers

MESSAGES = 45
EVERY_S = 0.1
KILL_AT = MESSAGES // 3
FAST = Tuning(
    rate_limits=RateLimits(min_interval_s=0.0, group_per_minute=1000),
    progress_interval_s=0.0,
    poll_timeout_s=1,
    event_block_ms=200,
    stop_grace_s=2.0,
)


@dataclass
class Outcome:
    photos: int
    apology: bool

    @property
    def acknowledged(self) -> bool:
        return not self.apology


def outcome(emulator: TelegramEmulator, chat_id: int, message_id: int) -> Outcome:
    sent = emulator.in_chat(chat_id)
    photos = sum(1 for s in sent if s.method == "sendPhoto" and not s.silent and s.reply_to == message_id)
    apology = any(text.startswith("Sorry") for s in sent for text in [s.shown, *s.history])
    return Outcome(photos, apology)


def failover_settings(settings: Settings, url: str, emulator: TelegramEmulator) -> Settings:
    return with_settings(
        settings,
        redis_url=url,
        telegram={
            "token": SecretStr(emulator.token),
            "base_url": emulator.base_url,
            "base_file_url": emulator.base_file_url,
        },
        worker={"heartbeat_interval_s": 0.5},
        moderation={"image_check": False},
        quotas={"enabled": False},
    )


@contextlib.asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[None]:
    """A worker and the Telegram bot, in this loop, until the block ends."""
    async with open_runtime(settings) as runtime:
        worker = asyncio.create_task(run_workers(settings, [c.QUEUE_GPU]))
        await WorkerRegistry(runtime.redis).wait_until_serving(c.QUEUE_GPU, 120, worker)
        bot = asyncio.create_task(
            run_telegram_bot(
                settings,
                runtime.service,
                runtime.redis,
                admin=runtime.admin,
                consumer_name="tg-failover",
                tuning=FAST,
            )
        )
        try:
            yield
        finally:
            for task in (bot, worker):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task


async def test_killing_the_primary_under_load_loses_nothing_acknowledged(
    settings: Settings,
    telegram_emulator: TelegramEmulator,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    emulator = telegram_emulator
    with SentinelCluster() as cluster:
        settings = failover_settings(settings, cluster.url, emulator)
        async with serving(settings):
            await emulator.wait_for(lambda: emulator.count("setMyCommands") >= 2, 30)
            asked: list[tuple[int, int]] = []
            sent_at: list[float] = []
            killed_at = promoted_at = 0.0
            for i in range(MESSAGES):
                user = User(5000 + i, f"User{i}")
                message = await emulator.user_message(
                    Chat(user.id), user, f"/imagine a boat number {i} --n 1"
                )
                asked.append((user.id, message["message_id"]))
                sent_at.append(time.monotonic())
                if i == KILL_AT:
                    cluster.primary.kill()
                    killed_at = time.monotonic()
                if killed_at and not promoted_at and cluster.master_port() == cluster.replica.port:
                    promoted_at = time.monotonic()
                await asyncio.sleep(EVERY_S)
            while not promoted_at:
                await asyncio.sleep(0.05)
                if cluster.master_port() == cluster.replica.port:
                    promoted_at = time.monotonic()

            def settled() -> bool:
                return all(o.photos or o.apology for o in (outcome(emulator, *a) for a in asked))

            with contextlib.suppress(TimeoutError):
                await emulator.wait_for(settled, 40)
            await asyncio.sleep(1.0)  # a duplicate would arrive now
            outcomes = [outcome(emulator, *a) for a in asked]
            delivered_after = sorted(
                s.at - killed_at
                for chat, _ in asked
                for s in emulator.in_chat(chat, "sendPhoto")
                if s.at > killed_at and not s.silent  # a live preview's photo is sent silently
            )
    acknowledged = [o for o in outcomes if o.acknowledged]
    lost = [a for a, o in zip(asked, outcomes, strict=True) if o.acknowledged and not o.photos]
    duplicated = [a for a, o in zip(asked, outcomes, strict=True) if o.photos > 1]
    apologised = sum(o.apology for o in outcomes)
    refused_at = [t - killed_at for t, o in zip(sent_at, outcomes, strict=True) if o.apology]
    window = f"{min(refused_at):.2f}–{max(refused_at):.2f} s" if refused_at else "none"
    figures = (
        f"failover: primary killed after {KILL_AT + 1} of {MESSAGES} messages; replica promoted "
        f"{promoted_at - killed_at:.2f} s later; first picture after the kill at "
        f"{delivered_after[0] if delivered_after else float('nan'):.2f} s; "
        f"acknowledged {len(acknowledged)}, delivered {sum(o.photos > 0 for o in outcomes)}, "
        f"told to retry {apologised} (sent {window} after the kill), lost {len(lost)}, "
        f"duplicated {len(duplicated)}"
    )
    with capsys.disabled():
        print("\n" + figures)
    assert not lost, figures
    assert not duplicated, figures
    assert promoted_at - killed_at < 10, figures
    assert len(acknowledged) >= MESSAGES - 20, figures  # only the failover window's messages are refused
