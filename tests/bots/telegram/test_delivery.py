"""Delivery that survives restarts, flood control and blocked chats; notices; img2img from a photo in a group."""

from __future__ import annotations

import asyncio
import io
import logging

import pytest
from PIL import Image
from telegram import Bot
from telegram.error import RetryAfter

from bots.telegram.delivery import DELIVERED
from core.delivery.events import EventPublisher
from core.models.ids import new_request_id
from core.models.request import Mode, Platform, Requester
from core.models.result import EventKind, ResultEvent
from tests.bots.telegram.conftest import (
    ALICE,
    ALICE_DM,
    BOB,
    GROUP,
    TelegramBot,
    last_request,
    render,
    request_id_of,
)
from tests.emulators.telegram_api import Chat, TelegramEmulator
from tests.emulators.telegram_fixture import telegram_emulator_fixture  # noqa: F401


async def test_a_result_finished_while_the_bot_was_down_arrives_once(telegram_bot: TelegramBot) -> None:
    emulator, service = telegram_bot.emulator, telegram_bot.pipeline.runtime.service
    await telegram_bot.announce_idle_worker()
    asked = await emulator.user_message(ALICE_DM, ALICE, "/imagine a storm over the sea --n 1")
    status = await emulator.wait_for(
        lambda: next(
            (s for s in emulator.in_chat(ALICE_DM.id) if s.shown.startswith("Queued — position")), None
        )
    )
    request_id = await last_request(telegram_bot, ALICE)

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


async def test_a_status_message_telegram_wont_delete_is_marked_done_not_left_queued(
    telegram_bot: TelegramBot,
) -> None:
    """Defect 30: after a restart, the result came as a new message and "Queued — position 1" stayed forever."""
    emulator = telegram_bot.emulator
    await telegram_bot.announce_idle_worker()
    asked = await emulator.user_message(ALICE_DM, ALICE, "/imagine a lantern in fog --n 1")
    status = await telegram_bot.reply_to(ALICE_DM, asked, prefix="Queued — position 1")
    request_id = await last_request(telegram_bot, ALICE)

    await telegram_bot.stop()
    await render(telegram_bot, request_id, Image.new("RGB", (64, 64), (40, 60, 80)))  # while the bot is down
    # Two days later: a bot may delete only messages younger than 48 hours.
    emulator.fail_next("deleteMessage", 1, 400, "Bad Request: message can't be deleted for everyone")
    await telegram_bot.start()

    photo = await telegram_bot.photo_reply(ALICE_DM, asked)
    assert request_id_of(photo) == request_id
    await emulator.wait_for(lambda: status.shown == DELIVERED)
    assert not status.deleted and "Queued — position 1" in status.history
    assert [c.status for c in emulator.calls if c.method == "deleteMessage"] == [400]


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
    assert [call.status for call in emulator.calls if call.method == "sendPhoto"] == [429, 429, 200]
    assert emulator.too_early == []  # each retry came after Telegram's retry_after, none hammered


async def test_the_emulator_catches_a_message_sent_before_retry_after(
    telegram_emulator: TelegramEmulator,
) -> None:
    """What the storm test's `too_early == []` rules out: a client without a limiter that retries at once."""
    emulator = telegram_emulator
    emulator.rate_limit_next("sendMessage", 1, retry_after=1)
    async with Bot(emulator.token, base_url=emulator.base_url) as bot:
        with pytest.raises(RetryAfter):
            await bot.send_message(ALICE_DM.id, "first")
        await bot.send_message(ALICE_DM.id, "at once")  # Telegram asked for a second
        await bot.send_message(BOB.id, "another chat")  # its flood wait is not this chat's
    assert [call.params["text"] for call in emulator.too_early] == ["at once"]


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


@pytest.mark.parametrize(
    ("status", "description"),
    [(403, "Forbidden: bot was blocked by the user"), (400, "Bad Request: chat not found")],
)
async def test_a_result_for_a_chat_that_blocked_the_bot_is_dropped_and_the_next_chat_still_gets_its_own(
    telegram_bot: TelegramBot, caplog: pytest.LogCaptureFixture, status: int, description: str
) -> None:
    emulator = telegram_bot.emulator
    await telegram_bot.pipeline.start_worker()
    await telegram_bot.command(ALICE_DM, ALICE, "/imagine a paper boat --n 1")
    emulator.block(ALICE_DM.id, status, description)  # Alice blocks the bot while her picture renders

    refused = await emulator.wait_for(
        lambda: [c for c in emulator.calls if c.method == "sendPhoto" and c.status == status], 20
    )
    bob_dm = Chat(BOB.id)
    asked = await emulator.user_message(bob_dm, BOB, "/imagine a paper plane --n 1")
    await telegram_bot.photo_reply(bob_dm, asked)

    assert emulator.in_chat(ALICE_DM.id, "sendPhoto") == []
    assert len(refused) == 1  # tried once, not retried: a blocked chat can't be reached
    assert [c.params["chat_id"] for c in emulator.calls if c.method == "sendPhoto"] == [ALICE_DM.id, BOB.id]
    assert any(r.levelno == logging.WARNING and "can't be reached" in r.getMessage() for r in caplog.records)


async def test_a_notice_is_posted_to_its_chat_once(telegram_bot: TelegramBot) -> None:
    emulator = telegram_bot.emulator
    publisher = EventPublisher(telegram_bot.pipeline.runtime.redis)
    mods = Chat(-555, "supergroup", "Moderators")

    def notice(text: str) -> ResultEvent:
        requester = Requester(platform=Platform.TELEGRAM, user_id="1", chat_id=str(mods.id))
        return ResultEvent(
            kind=EventKind.NOTICE,
            request_id=new_request_id(),
            message=text,
            requester=requester,
            reply_to={"chat_id": str(mods.id)},
        )

    ban = notice("Automatic ban: telegram:1 for 60 min (refused prompts).")
    await publisher.publish(ban)
    await publisher.publish(ban)  # published twice (a worker retried): still posted once
    await publisher.publish(notice("Automatic ban: telegram:2 for 60 min (refused prompts)."))
    await emulator.wait_for(lambda: len(emulator.in_chat(mods.id)) == 2)

    posted = emulator.in_chat(mods.id, "sendMessage")
    assert [s.text for s in posted] == [
        ban.message,
        "Automatic ban: telegram:2 for 60 min (refused prompts).",
    ]
    assert all(s.reply_to is None and s.reply_markup is None for s in posted)


async def test_a_result_for_a_group_upgraded_to_a_supergroup_goes_to_the_supergroup(
    telegram_bot: TelegramBot,
) -> None:
    emulator, service = telegram_bot.emulator, telegram_bot.pipeline.runtime.service
    group, supergroup = Chat(-4001, "group", "Sketchers"), -1004001
    await telegram_bot.announce_idle_worker()
    asked = await emulator.user_message(group, ALICE, "/imagine a paper crane --n 1")
    await telegram_bot.reply_to(group, asked, prefix="Queued — position")
    emulator.migrate(group.id, supergroup)  # upgraded while the picture waits

    await telegram_bot.pipeline.start_worker()
    photo = await emulator.wait_for(lambda: next(iter(emulator.in_chat(supergroup, "sendPhoto")), None), 20)
    request_id = request_id_of(photo)
    assert (await service.queue.load(request_id)).requester.chat_id == str(group.id)
    assert photo.reply_to is None  # the asking message stayed behind in the old group
    assert emulator.in_chat(group.id, "sendPhoto") == []
    refused = [c for c in emulator.calls if c.method == "sendPhoto" and c.status == 400]
    assert [c.params["chat_id"] for c in refused] == [group.id]  # tried there once, then moved on
    assert [c.params["chat_id"] for c in emulator.calls if c.method == "sendPhoto" and c.status == 200] == [
        supergroup
    ]


async def test_a_result_whose_image_is_gone_gets_an_apology_not_silence(telegram_bot: TelegramBot) -> None:
    from core.models.result import StoredImage

    emulator = telegram_bot.emulator
    chat = Chat(-777, "group", "Gone")
    requester = Requester(platform=Platform.TELEGRAM, user_id="1", chat_id=str(chat.id))
    missing = StoredImage(key="images/00/" + "0" * 64 + ".png", url="file:///nowhere.png", width=8, height=8)
    done = ResultEvent(
        kind=EventKind.DONE,
        request_id=new_request_id(),
        requester=requester,
        reply_to={"chat_id": str(chat.id)},
        images=(missing,),
        preview=missing,
    )
    await EventPublisher(telegram_bot.pipeline.runtime.redis).publish(done)
    sent = await emulator.wait_for(lambda: next(iter(emulator.in_chat(chat.id, "sendMessage")), None))
    assert sent.text.startswith("Sorry") and done.request_id in sent.text
    assert emulator.in_chat(chat.id, "sendPhoto") == []
