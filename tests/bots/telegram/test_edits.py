"""Editing on Telegram end to end (issue 10): the real PTB bot against the Bot API emulator, Redis and the tiny
worker — from a press under one image to the delivered edit with its own buttons, across a bot restart, and
the questions (Custom Zoom, Remix) answered with a reply."""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest
from PIL import Image

from core.commands.dialogs import referenced_button
from core.models.request import Canvas, GenerationRequest, Mode
from core.settings import QuotaSettings, Settings
from tests.bots.telegram.conftest import ALICE, ALICE_DM, TelegramBot, request_id_of
from tests.emulators.telegram_api import Sent
from tests.settings import with_settings

ONE_IMAGE_LABELS = [
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
]
RENDER_S = 120  # a tiny render takes seconds, but the machine may be busy


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """More than the free tier's two jobs in flight: these tests press several edit buttons at once."""
    return with_settings(settings, quotas=QuotaSettings(default_tier="unlimited"))


async def sent(
    bot: TelegramBot, method: str, match: Callable[[Sent], bool], within: float = RENDER_S
) -> Sent:
    emulator = bot.emulator
    return await emulator.wait_for(
        lambda: next((s for s in emulator.in_chat(ALICE_DM.id, method) if match(s)), None), within
    )


async def stored(bot: TelegramBot, photo: Sent) -> GenerationRequest:
    return await bot.pipeline.runtime.service.queue.load(request_id_of(photo))


async def one_image(bot: TelegramBot, prompt: str) -> tuple[str, Sent]:
    """/imagine one image, then U1: the request id and the document under which the edit buttons are."""
    asked = await bot.emulator.user_message(ALICE_DM, ALICE, f"/imagine {prompt} --n 1")
    grid = await bot.photo_reply(ALICE_DM, asked, within=RENDER_S)
    request_id = request_id_of(grid)
    await bot.emulator.press(ALICE_DM, ALICE, grid, f"ib:u:{request_id}:0")
    document = await sent(bot, "sendDocument", lambda s: s.reply_to == grid.message_id)
    assert [b["text"] for b in document.buttons()][:12] == ONE_IMAGE_LABELS
    return request_id, document


def labels(message: Sent) -> list[str]:
    return [button["text"] for button in message.buttons()]


async def test_vary_region_from_the_picker_to_the_repainted_image_across_a_restart(
    telegram_bot: TelegramBot,
) -> None:
    bot, emulator = telegram_bot, telegram_bot.emulator
    await bot.pipeline.start_worker()
    request_id, document = await one_image(bot, "a castle on a hill --seed 5")

    await emulator.press(ALICE_DM, ALICE, document, f"ib:vr:{request_id}:0")
    picker = await sent(bot, "sendMessage", lambda s: s.shown.startswith("Vary (Region)"), 20)
    assert picker.reply_to == document.message_id
    assert labels(picker) == ["⬜"] * 9 + ["Repaint", "Repaint with a new prompt…"]
    await emulator.press(ALICE_DM, ALICE, picker, picker.callback_data()[0])  # the top-left square
    await emulator.wait_for(lambda: labels(picker)[0] == "🟥")

    await bot.stop()  # a new bot process takes over the old picker
    await bot.start()
    await emulator.press(ALICE_DM, ALICE, picker, picker.callback_data()[4])  # and the middle one
    await emulator.wait_for(lambda: labels(picker)[:5] == ["🟥", "⬜", "⬜", "⬜", "🟥"])
    assert "2 of 9 squares selected" in picker.shown
    await emulator.press(ALICE_DM, ALICE, picker, picker.callback_data()[9])  # Repaint

    repainted = await sent(bot, "sendPhoto", lambda s: s.reply_to == picker.message_id)
    request = await stored(bot, repainted)
    assert (request.mode, request.parent_id, request.prompt) == (
        Mode.INPAINT,
        request_id,
        "a castle on a hill",
    )
    assert labels(repainted)[:12] == ONE_IMAGE_LABELS  # an edit gets the one-image buttons
    assert (repainted.caption or "").startswith("a castle on a hill\nVary (Region) of image 1")
    mask_key = request.mask_image
    assert mask_key is not None
    with Image.open(io.BytesIO(await bot.pipeline.runtime.service.store.get(mask_key))) as mask:
        assert mask.getpixel((2, 2)) == 255 and mask.getpixel((60, 60)) == 0
    assert picker.shown.startswith("Queued") or picker.shown.startswith("I'm already")


async def test_zoom_pan_upscale_custom_zoom_and_remix_deliver_edits_with_their_own_buttons(
    telegram_bot: TelegramBot,
) -> None:
    bot, emulator = telegram_bot, telegram_bot.emulator
    await bot.pipeline.start_worker()
    request_id, document = await one_image(bot, "a quiet harbour --seed 8")

    for data in (f"ib:zo:{request_id}:0:200", f"ib:pn:{request_id}:0:l", f"ib:us:{request_id}:0"):
        await emulator.press(ALICE_DM, ALICE, document, data)

    def three_edits() -> list[Sent] | None:
        found = [s for s in emulator.in_chat(ALICE_DM.id, "sendPhoto") if s.reply_to == document.message_id]
        return found if len(found) == 3 else None

    edits = await emulator.wait_for(three_edits, RENDER_S * 2)
    requests = [await stored(bot, photo) for photo in edits]
    outpaints = {r.canvas for r in requests if r.mode is Mode.OUTPAINT}
    assert outpaints == {Canvas(zoom=2.0), Canvas(pan="left", pan_fraction=0.5)}
    upscale = next(p for p, r in zip(edits, requests, strict=True) if r.mode is Mode.UPSCALE_SUBTLE)
    assert "Upscale (Subtle) 2× of image 1" in (upscale.caption or "")
    for photo in edits:
        assert labels(photo)[:12] == ONE_IMAGE_LABELS

    # Custom Zoom: the question, answered by replying to it.
    await emulator.press(ALICE_DM, ALICE, document, f"ib:zc:{request_id}:0")
    question = await sent(
        bot, "sendMessage", lambda s: s.shown.startswith("Reply to this message with the zoom")
    )
    assert referenced_button(question.shown) is not None
    reply = await emulator.user_message(ALICE_DM, ALICE, "1.5", reply_to=emulator.bot_message(question))
    zoomed = await sent(bot, "sendPhoto", lambda s: s.reply_to == reply["message_id"])
    assert (await stored(bot, zoomed)).canvas == Canvas(zoom=1.5)
    wrong = await emulator.user_message(ALICE_DM, ALICE, "3", reply_to=emulator.bot_message(question))
    refusal = await bot.reply_to(ALICE_DM, wrong)
    assert "from 1.1 to 2" in refusal.shown

    # Remix on (/settings): Vary (Strong) asks for the prompt first; the edited one is used.
    await emulator.user_message(ALICE_DM, ALICE, "/settings")
    menu = await sent(bot, "sendMessage", lambda s: s.shown.startswith("Your defaults"), 20)
    await emulator.press(ALICE_DM, ALICE, menu, "st:rx:1")
    await emulator.wait_for(lambda: "Remix: on" in menu.shown)
    await emulator.press(ALICE_DM, ALICE, document, f"ib:vs:{request_id}:0")
    remix = await sent(bot, "sendMessage", lambda s: s.shown.startswith("Remix:"))
    assert "Prompt: a quiet harbour" in remix.shown
    edited = await emulator.user_message(
        ALICE_DM, ALICE, "a stormy harbour", reply_to=emulator.bot_message(remix)
    )
    varied = await sent(bot, "sendPhoto", lambda s: s.reply_to == edited["message_id"])
    request = await stored(bot, varied)
    assert (request.mode, request.prompt) == (Mode.VARIATION, "a stormy harbour")
    assert (varied.caption or "").startswith("a stormy harbour")


async def test_region_flag_on_a_photo_and_bad_edits_say_what_to_change(telegram_bot: TelegramBot) -> None:
    bot, emulator = telegram_bot, telegram_bot.emulator
    await bot.pipeline.start_worker()
    photo = io.BytesIO()
    Image.new("RGB", (64, 48), (30, 90, 160)).save(photo, "PNG")

    bad = await emulator.user_photo(ALICE_DM, ALICE, photo.getvalue(), "/imagine a door --region 0,0,100,100")
    refused = await bot.reply_to(ALICE_DM, bad)
    assert "covers the whole image" in refused.shown
    none = await bot.command(ALICE_DM, ALICE, "/imagine a door --region 0,0,50,100")
    assert "attach the picture" in none.shown
    service = bot.pipeline.runtime.service
    assert await service.queue.recent(f"telegram:{ALICE.id}", 5) == []  # nothing queued, nothing charged

    asked = await emulator.user_photo(
        ALICE_DM, ALICE, photo.getvalue(), "/imagine a red door --region 0,0,50,100"
    )
    result = await bot.photo_reply(ALICE_DM, asked, within=RENDER_S)
    request = await stored(bot, result)
    assert (request.mode, request.width, request.height, request.prompt) == (
        Mode.INPAINT,
        64,
        48,
        "a red door",
    )
    assert labels(result)[:4] == ["U1", "U2", "U3", "U4"]  # four repaints: U picks one to edit further

    request_id = request_id_of(result)
    query = await emulator.press(ALICE_DM, ALICE, result, f"ib:rs:{request_id}:0:0")  # no square chosen
    answer = await emulator.wait_for(lambda: emulator.answer(query))
    assert answer.show_alert and "at least one square" in (answer.text or "")
