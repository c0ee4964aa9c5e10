"""Delivery that survives restarts and flood control; img2img from a photo in a group."""

from __future__ import annotations

import asyncio
import io

from PIL import Image

from core.request import Mode
from tests.bots.telegram.conftest import ALICE, ALICE_DM, GROUP, TelegramBot, request_id_of


async def test_a_result_finished_while_the_bot_was_down_arrives_once(telegram_bot: TelegramBot) -> None:
    emulator, service = telegram_bot.emulator, telegram_bot.pipeline.runtime.service
    await telegram_bot.announce_idle_worker()
    asked = await emulator.user_message(ALICE_DM, ALICE, "/imagine a storm over the sea --n 1")
    status = await emulator.wait_for(
        lambda: next(
            (s for s in emulator.in_chat(ALICE_DM.id) if s.shown.startswith("Queued — position")), None
        )
    )
    request_id = (await telegram_bot.pipeline.runtime.redis.get(f"imagebot:tg:last:{ALICE.id}")).decode()

    await telegram_bot.stop()
    await telegram_bot.pipeline.start_worker()  # renders while the bot is down
    async with asyncio.timeout(20):
        while True:
            try:
                await service.result(request_id)
                break
            except Exception:
                await asyncio.sleep(0.05)
    assert emulator.in_chat(ALICE_DM.id, "sendPhoto") == []

    await telegram_bot.start()
    photo = await telegram_bot.photo_reply(ALICE_DM, asked)
    assert request_id_of(photo) == request_id
    await emulator.wait_for(lambda: status.deleted)
    await telegram_bot.stop()
    await telegram_bot.start()  # a second restart delivers nothing again
    await asyncio.sleep(0.5)
    assert len(emulator.in_chat(ALICE_DM.id, "sendPhoto")) == 1
    assert [s.history[0] for s in emulator.in_chat(ALICE_DM.id, "sendMessage")] == ["Queued…"]  # asked once


async def test_every_reply_arrives_through_a_429_storm(telegram_bot: TelegramBot) -> None:
    emulator = telegram_bot.emulator
    await telegram_bot.pipeline.start_worker()
    emulator.rate_limit_next("sendMessage", 2, retry_after=1)
    emulator.rate_limit_next("sendPhoto", 2, retry_after=1)

    asked = await emulator.user_message(ALICE_DM, ALICE, "/imagine a kite in the wind --n 2")
    helped = await emulator.user_message(ALICE_DM, ALICE, "/help")
    photo = await telegram_bot.photo_reply(ALICE_DM, asked, within=30)
    assert len(photo.callback_data()) == 5  # U1 U2 V1 V2 🔄
    assert any(s.reply_to == helped["message_id"] for s in emulator.in_chat(ALICE_DM.id, "sendMessage"))
    refused = [call.method for call in emulator.calls if call.status == 429]
    assert sorted(refused) == ["sendMessage", "sendMessage", "sendPhoto", "sendPhoto"]
    waited = [call.at for call in emulator.calls if call.method == "sendPhoto"]
    assert waited[-1] - waited[0] >= 1.9  # retry_after was honoured, not hammered


def png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 80, 40)).save(buffer, "PNG")
    return buffer.getvalue()


async def test_a_photo_captioned_imagine_in_a_group_is_img2img(telegram_bot: TelegramBot) -> None:
    emulator, service = telegram_bot.emulator, telegram_bot.pipeline.runtime.service
    await telegram_bot.pipeline.start_worker()
    await emulator.user_message(GROUP, ALICE, "/imagine@some_other_bot not for us")
    sent = await emulator.user_photo(
        GROUP, ALICE, png(96, 64), caption=f"/imagine@{emulator.username} as a sketch --n 1"
    )

    photo = await telegram_bot.photo_reply(GROUP, sent)
    request = await service.queue.load(request_id_of(photo))
    assert request.mode is Mode.IMG2IMG and request.requester.community_id == str(GROUP.id)
    assert request.width > request.height  # the source's landscape aspect was kept
    assert emulator.count("getFile") == 1
    replies = {s.reply_to for s in emulator.in_chat(GROUP.id)}
    assert replies == {sent["message_id"]}  # nothing answered the command meant for another bot
