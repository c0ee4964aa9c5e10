"""What the bot posts never pings anyone: a prompt's @username or user link is echoed as text (defect 13)."""

from __future__ import annotations

from PIL import Image

from bots.telegram.admin import NO_USERNAMES
from bots.telegram.replies import WORD_JOINER, caption_for
from core.commands.messages import CAPTION_LIMIT, text_length
from core.models.request import GenerationRequest, Platform, Requester
from core.models.result import EventKind, ResultEvent
from tests.bots.telegram.conftest import ALICE, GROUP, OLGA, TelegramBot, last_request, render
from tests.emulators.telegram_api import Sent, as_telegram_parses

PINGS = '@bob_the_builder, [Bob](tg://user?id=1002) and <a href="tg://user?id=1002">Bob</a>'


def as_read(text: str | None) -> str:
    """What a reader sees (the word joiner is invisible)."""
    return (text or "").replace(WORD_JOINER, "")


async def test_a_prompt_that_mentions_people_is_echoed_without_pinging_them(
    telegram_bot: TelegramBot,
) -> None:
    bot, emulator = telegram_bot, telegram_bot.emulator
    await bot.announce_idle_worker()
    asked = await emulator.user_message(GROUP, ALICE, f"/imagine a portrait of {PINGS} --n 1")
    status = await bot.reply_to(GROUP, asked, prefix="Queued — position")
    await render(bot, await last_request(bot, ALICE), Image.new("RGB", (64, 64), (90, 120, 160)))

    photo = await bot.photo_reply(GROUP, asked)
    assert as_read(photo.caption).startswith(f"a portrait of {PINGS}\nseed ")  # every word still there…
    assert photo.pings() == []  # …and nobody notified
    assert status.pings() == []

    refused = await bot.command(GROUP, ALICE, "/imagine a fox --ar @bob_the_builder")
    await emulator.wait_for(lambda: "(you wrote @bob_the_builder)" in as_read(refused.shown))
    assert refused.pings() == []

    hint = await bot.command(GROUP, OLGA, "/admin ban @bob_the_builder")  # our own words name "@usernames"
    assert as_read(hint.shown) == NO_USERNAMES
    assert hint.pings() == []
    every = [sent for sent in emulator.sent if sent.pings()]
    assert every == []


def test_a_caption_full_of_mentions_still_fits_telegrams_limit() -> None:
    asker = Requester(platform=Platform.TELEGRAM, user_id="1", chat_id="-100")
    prompt = " ".join(f"@user_{i:04d}" for i in range(150))  # 1,649 characters, 150 mentions
    request = GenerationRequest(
        request_id="a" * 16, prompt=prompt, width=64, height=64, steps=2, guidance=5.0, seeds=(1,),
        model="tiny", requester=asker,
    )  # fmt: skip
    done = ResultEvent(kind=EventKind.DONE, request_id="a" * 16, requester=asker, model="tiny")
    caption = caption_for(request, done)
    assert text_length(caption) <= CAPTION_LIMIT
    assert caption.endswith("\nseed  · tiny") and as_read(caption).startswith("@user_0000 @user_0001")
    _, entities = as_telegram_parses(caption, {}, "caption_entities")
    assert Sent(1, 1, "sendPhoto", caption=caption, entities=entities).pings() == []
