"""/loras, the imagine command's lora/sampler/control options and /admin lora on Discord, end to end: the real
discord.py client against the emulator, over the real pipeline rendering the tiny model with a tiny LoRA and a
tiny ControlNet."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

from core.settings import AdapterSettings, Settings
from tests.adapter_fixture import adapter_settings, tiny_controlnet_dir, tiny_lora_files  # noqa: F401
from tests.bots.discord.conftest import BotRunner, answer
from tests.emulators.discord_api import DiscordEmulator
from tests.settings import with_settings

USER = 4242
ADMIN = 6002


@pytest.fixture
def settings(settings: Settings, adapter_settings: AdapterSettings) -> Settings:  # noqa: F811
    return with_settings(settings, adapters=adapter_settings)


def square_png() -> bytes:
    image = Image.new("RGB", (128, 128), "black")
    ImageDraw.Draw(image).rectangle((32, 32, 95, 95), fill="white")
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


async def test_loras_lists_and_the_lora_option_autocompletes(
    bots: BotRunner, discord_emulator: DiscordEmulator
) -> None:
    emulator = discord_emulator
    await bots.start()

    listed = await answer(emulator, await emulator.slash("loras", {}, user_id=USER))
    assert listed.ephemeral and "• glow (for tiny, weight 1, adds “pixel”)" in listed.content

    choices = await emulator.autocomplete("imagine", {"prompt": "a cat", "lora": "gr"}, "lora", user_id=USER)
    assert [choice["value"] for choice in choices] == ["grain"]
    assert choices[0]["name"] == "grain — for tiny"


async def test_a_lora_and_sampler_imagine_renders_and_moderators_can_turn_the_lora_off(
    bots: BotRunner, discord_emulator: DiscordEmulator
) -> None:
    emulator, service = discord_emulator, bots.pipeline.runtime.service
    await bots.pipeline.start_worker()
    await bots.start()

    command = await emulator.slash(
        "imagine",
        {"prompt": "a cat", "lora": "glow", "sampler": "dpm++ 2m karras", "count": 1, "seed": 3},
        user_id=USER,
    )
    shown = await emulator.result(command.token, 60)
    request = await service.queue.load(shown.files[0].filename.removesuffix(".png"))
    assert request.prompt == "pixel, a cat" and request.sampler == "dpm++ 2m karras"
    assert [lora.name for lora in request.loras] == ["glow"]

    denied = await answer(
        emulator,
        await emulator.slash(
            "admin", {"name": "glow"}, subcommand="lora deny", user_id=ADMIN, roles=(emulator.admin_role,)
        ),
    )
    assert "turned off here" in denied.content
    refused = await answer(
        emulator, await emulator.slash("imagine", {"prompt": "a cat", "lora": "glow"}, user_id=USER)
    )
    assert refused.ephemeral and "turned off the LoRA “glow”" in refused.content


async def test_control_follows_the_attached_picture_and_shows_its_map(
    bots: BotRunner, discord_emulator: DiscordEmulator
) -> None:
    emulator = discord_emulator
    await bots.pipeline.start_worker()
    await bots.start()
    picture = emulator.add_attachment("square.png", square_png())

    command = await emulator.slash(
        "imagine",
        {"prompt": "a house", "control": "canny", "control_weight": 0.8, "count": 1},
        attachments={"control_image": picture},
        user_id=USER,
    )
    shown = await emulator.wait_for(
        lambda: (m := emulator.original(command.token)) and len(m.files) == 2 and m, 60
    )

    control = next(upload for upload in shown.files if upload.filename.endswith("-control.png"))
    with Image.open(io.BytesIO(control.data)) as edges:
        assert np.asarray(edges.convert("L")).max() == 255

    alone = emulator.add_attachment("alone.png", square_png())
    without_kind = await emulator.slash(
        "imagine", {"prompt": "a house"}, attachments={"control_image": alone}, user_id=USER
    )
    assert "pick a control kind" in (await answer(emulator, without_kind)).content
