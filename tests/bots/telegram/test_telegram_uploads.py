"""Photos sent with /imagine are downloaded only once the command passed every check (defect 14).

The emulator records every Bot API call, so a photo that was never fetched shows as no getFile call.
"""

from __future__ import annotations

import io

from PIL import Image

from core.governance.quotas import owner_id
from core.models.request import Platform, Requester
from tests.bots.telegram.conftest import ALICE, GROUP, TelegramBot
from tests.emulators.telegram_api import Chat


def png(shade: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (96, 64), (shade, 80, 40)).save(buffer, "PNG")
    return buffer.getvalue()


def alice_in(chat: Chat) -> Requester:
    return Requester(platform=Platform.TELEGRAM, user_id=str(ALICE.id), chat_id=str(chat.id))


async def refusal(bot: TelegramBot, chat: Chat, words: str, count: int = 1) -> None:
    """Wait until `count` of the bot's messages in `chat` say `words`."""
    emulator = bot.emulator
    await emulator.wait_for(
        lambda: sum(words in sent.shown for sent in emulator.in_chat(chat.id)) >= count or None, 20
    )


def stored_inputs(bot: TelegramBot) -> list[str]:
    root = bot.pipeline.settings.storage.local_dir / "inputs"
    return sorted(p.name for p in root.rglob("*") if p.is_file()) if root.exists() else []


async def test_a_banned_users_photo_is_never_downloaded(telegram_bot: TelegramBot) -> None:
    emulator, service = telegram_bot.emulator, telegram_bot.pipeline.runtime.service
    await telegram_bot.announce_idle_worker()
    await service.admission.bans.ban(owner_id(alice_in(GROUP)), "spam", by="mod")
    await emulator.user_photo(GROUP, ALICE, png(1), caption=f"/imagine@{emulator.username} as a sketch --n 1")
    await refusal(telegram_bot, GROUP, "banned")
    assert emulator.count("getFile") == 0
    assert stored_inputs(telegram_bot) == []


async def test_ten_photos_over_the_quota_are_neither_downloaded_nor_stored(telegram_bot: TelegramBot) -> None:
    emulator, service = telegram_bot.emulator, telegram_bot.pipeline.runtime.service
    await telegram_bot.announce_idle_worker()
    await service.admission.quotas.set_daily_override(owner_id(alice_in(GROUP)), 0)
    for shade in range(10):
        await emulator.user_photo(
            GROUP, ALICE, png(shade), caption=f"/imagine@{emulator.username} as a sketch --n 1"
        )
    await refusal(telegram_bot, GROUP, "images for today", count=10)
    assert emulator.count("getFile") == 0
    assert stored_inputs(telegram_bot) == []
