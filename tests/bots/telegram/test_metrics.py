"""The Telegram bot on /readyz and /metrics: ready while updates come in; Telegram's errors and the seconds
spent waiting on its rate limits are counted (read over HTTP)."""

from __future__ import annotations

import asyncio
import contextlib

from bots.telegram import run_telegram_bot
from tests.bots.telegram.conftest import ALICE, ALICE_DM, FAST, bot_settings
from tests.emulators.telegram_api import TelegramEmulator
from tests.metrics_scrape import served
from tests.pipeline_fixture import Pipeline


async def test_ready_while_polling_and_flood_control_is_counted(
    telegram_emulator: TelegramEmulator, pipeline: Pipeline
) -> None:
    emulator, runtime = telegram_emulator, pipeline.runtime
    async with served() as endpoint:
        before = await endpoint.metrics()
        bot = asyncio.create_task(
            run_telegram_bot(
                bot_settings(emulator, pipeline),
                runtime.service,
                runtime.redis,
                admin=runtime.admin,
                consumer_name="tg-metrics",
                tuning=FAST,
                add_check=endpoint.server.add_check,
            )
        )
        try:
            await emulator.wait_for(lambda: emulator.count("setMyCommands") > 0, 10)
            assert "gateway" in await endpoint.readiness(200)  # polling starts after the command menu
            emulator.rate_limit_next("sendMessage", 1, retry_after=1)
            asked = await emulator.user_message(ALICE_DM, ALICE, "/help")
            await emulator.wait_for(
                lambda: [
                    s
                    for s in emulator.in_chat(ALICE_DM.id, "sendMessage")
                    if s.reply_to == asked["message_id"]
                ],
                10,
            )
            after = await endpoint.metrics()
        finally:
            await emulator.release_polls()
            bot.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await bot
        status, body = await endpoint.get("/readyz")
    assert status == 503 and "gateway" in body  # stopped: no updates come in
    errors = ("imagebot_platform_api_errors_total", {"platform": "telegram", "kind": "RetryAfter"})
    assert after.value(errors[0], **errors[1]) - before.value(errors[0], **errors[1]) == 1
    waited = after.value("imagebot_rate_limit_wait_seconds_total", platform="telegram") - before.value(
        "imagebot_rate_limit_wait_seconds_total", platform="telegram"
    )
    assert waited >= 0.9  # the retry_after of 1 s, less the time the 429 took to arrive
