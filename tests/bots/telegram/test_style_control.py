"""/loras, --lora and --control on Telegram, end to end: the real PTB bot against the Bot API emulator, over
the real pipeline with a worker rendering the tiny model with a tiny LoRA and a tiny ControlNet."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

from core.settings import AdapterSettings, Settings
from tests.adapter_fixture import adapter_settings, tiny_controlnet_dir, tiny_lora_files  # noqa: F401
from tests.bots.telegram.conftest import ALICE, ALICE_DM, TelegramBot
from tests.bots.telegram.test_telegram_uploads import stored_inputs
from tests.settings import with_settings


@pytest.fixture
def settings(settings: Settings, adapter_settings: AdapterSettings) -> Settings:  # noqa: F811
    return with_settings(settings, adapters=adapter_settings)


def square_png() -> bytes:
    image = Image.new("RGB", (128, 128), "black")
    ImageDraw.Draw(image).rectangle((32, 32, 95, 95), fill="white")
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


async def test_loras_lists_the_catalog(telegram_bot: TelegramBot) -> None:
    reply = await telegram_bot.command(ALICE_DM, ALICE, "/loras")
    assert "• glow (for tiny, weight 1, adds “pixel”)" in reply.shown
    assert "• xl-only (for sdxl, weight 1) — for SDXL" in reply.shown


async def test_a_lora_imagine_is_rendered_with_the_lora_and_its_trigger_word(
    telegram_bot: TelegramBot,
) -> None:
    await telegram_bot.pipeline.start_worker()
    asked = await telegram_bot.emulator.user_message(
        ALICE_DM, ALICE, "/imagine a cat --lora glow:0.7 --n 1 --seed 5"
    )
    photo = await telegram_bot.photo_reply(ALICE_DM, asked, within=60)

    assert "pixel, a cat" in photo.shown
    service = telegram_bot.pipeline.runtime.service
    request = await service.queue.load(photo.callback_data()[0].split(":")[2])
    assert [(lora.name, lora.weight) for lora in request.loras] == [("glow", 0.7)]


async def test_an_unknown_lora_is_refused_with_the_names(telegram_bot: TelegramBot) -> None:
    reply = await telegram_bot.command(ALICE_DM, ALICE, "/imagine a cat --lora nope")
    assert "I don't know the LoRA “nope”" in reply.shown and "glow, grain" in reply.shown


async def test_a_photo_captioned_with_control_is_followed_and_its_map_shown(
    telegram_bot: TelegramBot,
) -> None:
    emulator = telegram_bot.emulator
    await telegram_bot.pipeline.start_worker()
    asked = await emulator.user_photo(
        ALICE_DM, ALICE, square_png(), caption="/imagine a house --control canny --n 1"
    )
    result = await telegram_bot.photo_reply(ALICE_DM, asked, within=60)

    control = await emulator.wait_for(
        lambda: next(
            (s for s in emulator.in_chat(ALICE_DM.id, "sendPhoto") if s.reply_to == result.message_id), None
        ),
        20,
    )
    assert control.file is not None
    with Image.open(io.BytesIO(control.file)) as shown:
        edges = np.asarray(shown.convert("L"))
    assert edges.max() == 255 and edges[0].max() == 0  # the square's edges, nothing at the picture's top
    assert len(stored_inputs(telegram_bot)) == 1  # the photo, stored once as the control picture
