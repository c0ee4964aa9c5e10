"""Webhook mode: Telegram POSTs updates to the bot's listener with the secret-token header."""

from __future__ import annotations

import logging
import socket

import aiohttp
import pytest
from pydantic import SecretStr

from bots.telegram import run_telegram_bot
from cli.redaction import MASK, Redactor, install
from core.errors import ConfigError
from tests.bots.telegram.conftest import ALICE, ALICE_DM, FAST, TelegramBot, bot_settings
from tests.emulators.telegram_api import TelegramEmulator
from tests.pipeline_fixture import Pipeline

PUBLIC_URL = "https://bot.example.org/tg/hook"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def webhook_bot(emulator: TelegramEmulator, pipeline: Pipeline, port: int, secret: str | None) -> TelegramBot:
    settings = bot_settings(
        emulator,
        pipeline,
        webhook_url=PUBLIC_URL,
        webhook_secret=SecretStr(secret) if secret is not None else None,
        webhook_listen="127.0.0.1",
        webhook_port=port,
    )
    return TelegramBot(emulator, pipeline, settings)


async def test_updates_arrive_by_webhook_only_with_the_secret(
    telegram_emulator: TelegramEmulator, pipeline: Pipeline
) -> None:
    emulator, port = telegram_emulator, free_port()
    listener = f"http://127.0.0.1:{port}/tg/hook"
    asked = emulator.compose(ALICE_DM, ALICE, "/help")
    bot = webhook_bot(emulator, pipeline, port, "s3cret_-Token")
    await bot.start()
    try:
        webhook = await emulator.wait_for(lambda: emulator.webhook)
        assert webhook["url"] == PUBLIC_URL and webhook["secret_token"] == "s3cret_-Token"
        assert sorted(webhook["allowed_updates"]) == ["callback_query", "message"]

        refused = [
            await emulator.post_update(
                listener, {"message": emulator.compose(ALICE_DM, ALICE, "/help")}, secret
            )
            for secret in ("s3cret_-Token-not", "", None)
        ]
        assert [status for status, _ in refused] == [403, 403, 403]

        status, _ = await emulator.post_update(listener, {"message": asked}, "s3cret_-Token")
        assert status == 200
        reply = await bot.reply_to(ALICE_DM, asked)
        assert "/imagine" in reply.shown
        assert [s.reply_to for s in emulator.in_chat(ALICE_DM.id)] == [
            asked["message_id"]
        ]  # none for refused
        assert emulator.count("getUpdates") == 0 and emulator.count("deleteWebhook") == 0
    finally:
        await bot.stop()
    with pytest.raises(aiohttp.ClientConnectionError):  # the listener is closed
        await emulator.post_update(listener, {"message": asked}, "s3cret_-Token")


async def test_a_generated_secret_is_the_one_given_to_telegram_and_polling_deletes_the_webhook(
    telegram_emulator: TelegramEmulator, pipeline: Pipeline, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    emulator, port = telegram_emulator, free_port()
    bot = webhook_bot(emulator, pipeline, port, None)
    install(Redactor.from_settings(bot.settings), [caplog.handler])  # as `imagebot telegram` does
    await bot.start()
    try:
        webhook = await emulator.wait_for(lambda: emulator.webhook)
        secret = webhook["secret_token"]
        assert isinstance(secret, str) and len(secret) >= 32
        asked = emulator.compose(ALICE_DM, ALICE, "/help")
        listener = f"http://127.0.0.1:{port}/tg/hook"
        assert (await emulator.post_update(listener, {"message": asked}, "not-it"))[0] == 403
        assert (await emulator.post_update(listener, {"message": asked}, secret))[0] == 200
        await bot.reply_to(ALICE_DM, asked)
    finally:
        await bot.stop()
    assert emulator.webhook is not None  # left set: another instance may still serve it
    leaks = [r for r in caplog.records if secret in r.getMessage() or secret in (r.exc_text or "")]
    assert not leaks
    logged = [r.getMessage() for r in caplog.records if "setWebhook" in r.getMessage()]
    assert any(f"'secret_token': '{MASK}'" in message for message in logged)  # PTB logged it, masked

    # Back to long polling: the webhook is deleted first, then updates come by getUpdates.
    polling = TelegramBot(emulator, pipeline, bot_settings(emulator, pipeline))
    await polling.start()
    try:
        await emulator.wait_for(lambda: emulator.count("deleteWebhook") == 1)
        assert emulator.webhook is None
        await polling.command(ALICE_DM, ALICE, "/help")
    finally:
        await polling.stop()


async def test_a_secret_telegram_would_refuse_stops_the_bot_before_it_starts(
    telegram_emulator: TelegramEmulator, pipeline: Pipeline
) -> None:
    settings = webhook_bot(telegram_emulator, pipeline, free_port(), "has spaces").settings
    runtime = pipeline.runtime
    with pytest.raises(ConfigError, match="IMAGEBOT_TELEGRAM__WEBHOOK_SECRET"):
        await run_telegram_bot(settings, runtime.service, runtime.redis, admin=runtime.admin, tuning=FAST)
    assert telegram_emulator.calls == []
