"""Operations on Telegram, end to end with the real PTB bot against the emulator: /admin stats and /forget."""

from __future__ import annotations

import asyncio

import pytest

from core.delivery.result_store import stored_keys
from core.errors import StorageError
from core.governance.preferences import PreferenceStore
from core.keys import AUDIT_STREAM, PREFS_KEY, REQUEST_KEY
from tests.bots.telegram.conftest import ALICE, BOB, GROUP, MONA, OLGA, Chat, TelegramBot, User, request_id_of


async def until(bot: TelegramBot, chat: Chat, user: User, text: str, needle: str) -> str:
    """Send `text` until the bot's reply contains `needle` (a delivery is counted just after its reply)."""
    shown = ""
    for _ in range(50):
        shown = (await bot.command(chat, user, text)).shown
        if needle in shown:
            return shown
        await asyncio.sleep(0.1)
    raise AssertionError(f"{needle!r} never showed up in: {shown}")


async def test_stats_show_todays_jobs_stages_refusals_and_busiest_users_by_scope(
    telegram_bot: TelegramBot,
) -> None:
    bot, emulator = telegram_bot, telegram_bot.emulator
    emulator.make_admin(GROUP, MONA)
    await bot.pipeline.start_worker()
    for prompt in ("a lighthouse --n 1", "a harbour --n 2"):
        asked = await emulator.user_message(GROUP, ALICE, f"/imagine {prompt}")
        await bot.photo_reply(GROUP, asked)
    await bot.command(GROUP, MONA, "/admin block add dragon")
    refused = await bot.command(GROUP, BOB, "/imagine a dragon")
    assert "this community has blocked" in refused.shown

    text = await until(bot, GROUP, MONA, "/admin stats", "delivery: p50")
    assert text.startswith("Stats for this community,")
    assert "Jobs: 2 (2 done, 0 failed, 0 refused, 0 cancelled); 3 images" in text
    for stage in ("queue wait", "model", "store", "delivery"):
        assert f"{stage}: p50 " in text
    assert "Refused: prompt 1" in text
    assert f"Busiest: {ALICE.id} 2" in text

    whole = (await bot.command(Chat(OLGA.id), OLGA, "/admin stats")).shown
    assert whole.startswith("Stats for the whole bot,") and "Jobs: 2 (2 done" in whole
    assert (await bot.command(GROUP, BOB, "/admin stats")).shown == "Only mods can use /admin stats."
    assert (await bot.command(Chat(MONA.id), MONA, "/admin stats")).shown.startswith("Only mods")


async def test_forget_asks_first_then_removes_the_users_data_and_their_posted_results(
    telegram_bot: TelegramBot,
) -> None:
    bot, emulator = telegram_bot, telegram_bot.emulator
    runtime = bot.pipeline.runtime
    redis, store = runtime.redis, runtime.service.store
    await bot.pipeline.start_worker()
    await PreferenceStore(redis).update("telegram", str(ALICE.id), aspect="16:9")
    asked = await emulator.user_message(GROUP, ALICE, "/imagine a secret garden --n 2")
    photo = await bot.photo_reply(GROUP, asked)
    request_id = request_id_of(photo)
    result = await runtime.service.result(request_id)
    files = stored_keys(result)
    bobs = await emulator.user_message(GROUP, BOB, "/imagine a harbour --n 1")
    await bot.photo_reply(GROUP, bobs)

    # Keeping is a choice too: nothing goes.
    offer = await bot.command(GROUP, ALICE, "/forget")
    assert offer.shown.startswith("This deletes what I keep about you: 1 request(s) with their results")
    keep = next(data for data in offer.callback_data() if data.startswith("fg:n:"))
    await emulator.press(GROUP, ALICE, offer, keep)
    await emulator.wait_for(lambda: offer.shown.startswith("Nothing was deleted"))
    assert await runtime.service.result(request_id)

    offer = await bot.command(GROUP, ALICE, "/forget")
    confirm = next(data for data in offer.callback_data() if data.startswith("fg:y:"))
    refused = await emulator.press(GROUP, BOB, offer, confirm)  # not Bob's to press
    answer = await emulator.wait_for(lambda: emulator.answer(refused))
    assert answer.show_alert and "Only the person who asked to be forgotten" in (answer.text or "")

    await emulator.press(GROUP, ALICE, offer, confirm)
    done = await emulator.wait_for(lambda: offer.shown.startswith("Done") and offer.shown)
    assert "• 1 request(s) and 1 result(s)" in done
    assert f"• {len(files)} stored image(s)" in done
    assert "• your /settings and history" in done and "they now say forgotten:" in done
    assert "• 1 of 1 posted result message(s)" in done
    assert photo.deleted  # the result left the group
    for key in files:
        with pytest.raises(StorageError):
            await store.get(key)
    assert not await redis.exists(REQUEST_KEY.format(request_id=request_id))
    assert not await redis.exists(PREFS_KEY.format(platform="telegram", user_id=str(ALICE.id)))
    entries = [fields[b"entry"].decode() for _, fields in await redis.xrange(AUDIT_STREAM)]
    assert not any(f"telegram:{ALICE.id}" in entry or "secret garden" in entry for entry in entries)
    assert any('"action":"forget"' in entry for entry in entries)
    assert any(f"telegram:{BOB.id}" in entry for entry in entries)  # Bob's own generation is untouched

    again = await emulator.press(GROUP, ALICE, offer, confirm)  # the token was used
    answer = await emulator.wait_for(lambda: emulator.answer(again))
    assert "expired or was used already" in (answer.text or "")
