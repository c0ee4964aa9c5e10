"""End to end: a user in Telegram, the real PTB bot, Redis, and a worker on the tiny model."""

from __future__ import annotations

import io
import logging

import pytest
from PIL import Image

from cli.redaction import MASK, Redactor, install
from tests.bots.telegram.conftest import ALICE, ALICE_DM, TelegramBot, request_id_of


async def test_imagine_then_vary_then_upscale(
    telegram_bot: TelegramBot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    install(Redactor.from_settings(telegram_bot.settings), [caplog.handler])  # as `imagebot telegram` does
    bot, emulator = telegram_bot, telegram_bot.emulator
    await bot.pipeline.start_worker()
    service = bot.pipeline.runtime.service

    asked = await emulator.user_message(ALICE_DM, ALICE, "/imagine a lighthouse at dusk --seed 7")
    photo = await bot.photo_reply(ALICE_DM, asked)

    placeholder = emulator.in_chat(ALICE_DM.id, "sendMessage")[0]
    assert placeholder.reply_to == asked["message_id"]
    assert placeholder.history[0] == "Queued…"
    await emulator.wait_for(lambda: placeholder.deleted)  # the result replaces it
    # acknowledged with the queue position, or plainly when the worker had taken the job already
    acknowledged = placeholder.history[1]
    assert acknowledged.startswith("Queued — position 1") or acknowledged == "Queued", placeholder.history
    assert photo.caption is not None and photo.caption.startswith(
        "a lighthouse at dusk\nseed 7, 8, 9, 10 · tiny"
    )
    request_id = request_id_of(photo)
    result = await service.result(request_id)
    assert result.preview is not None
    with Image.open(io.BytesIO(photo.file or b"")) as preview:
        assert preview.size == (result.preview.width, result.preview.height)
    labels = [button["text"] for button in photo.buttons()]
    assert labels == ["U1", "U2", "U3", "U4", "V1", "V2", "V3", "V4", "🔄"]
    assert all(len(data.encode()) <= 64 for data in photo.callback_data())
    assert (ALICE_DM.id, "upload_photo") in emulator.chat_actions

    query = await emulator.press(ALICE_DM, ALICE, photo, f"ib:v:{request_id}:1")  # V2
    variation = await emulator.wait_for(
        lambda: next(
            (s for s in emulator.in_chat(ALICE_DM.id, "sendPhoto") if s.reply_to == photo.message_id), None
        ),
        20,
    )
    answer = emulator.answer(query)
    assert answer is not None and not answer.show_alert and answer.text and answer.text.startswith("Queued")
    variation_id = request_id_of(variation)
    assert variation_id != request_id
    varied = await service.result(variation_id)
    assert len(varied.images) == 4

    await emulator.press(ALICE_DM, ALICE, variation, f"ib:u:{variation_id}:0")  # U1
    document = await emulator.wait_for(
        lambda: next(iter(emulator.in_chat(ALICE_DM.id, "sendDocument")), None)
    )
    assert document.reply_to == variation.message_id
    assert (document.file or b"").startswith(b"\x89PNG\r\n\x1a\n")
    with Image.open(io.BytesIO(document.file or b"")) as full:
        assert full.format == "PNG"
        assert full.size == (varied.images[0].width, varied.images[0].height)
    assert [b["text"] for b in document.buttons()] == [
        "Upscale (Subtle)",
        "Upscale (Creative)",
        "Vary (Subtle)",
        "Vary (Strong)",
        "Vary (Region)",
        "Zoom Out 2×",
        "Zoom Out 1.5×",
        "Custom Zoom",
        "⬅️",
        "➡️",
        "⬆️",
        "⬇️",
        "Describe",
        "ⓘ Info",
        "🗑 Delete",
    ]
    assert all(len(data.encode()) <= 64 for data in document.callback_data())

    leaks = [
        r for r in caplog.records if emulator.token in r.getMessage() or emulator.token in (r.exc_text or "")
    ]
    assert not leaks
    assert any(f"/bot{MASK}/sendPhoto" in r.getMessage() for r in caplog.records)  # httpx logged it, masked
