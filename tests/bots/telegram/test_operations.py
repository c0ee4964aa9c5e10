"""Operations on Telegram, end to end with the real PTB bot against the emulator: /admin stats and /forget."""

from __future__ import annotations

import asyncio

from tests.bots.telegram.conftest import ALICE, BOB, GROUP, MONA, OLGA, Chat, TelegramBot, User


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
