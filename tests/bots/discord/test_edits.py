"""Editing on Discord end to end (issue 10): the real discord.py client against the emulator, Redis and the
tiny worker — the ephemeral region picker, modals (a region's prompt, Custom Zoom, Remix), the one-image
buttons, and a new bot process pressing an old message's buttons."""

from __future__ import annotations

import pytest

from core.models.request import Canvas, GenerationRequest, Mode
from core.settings import QuotaSettings, Settings
from tests.bots.discord.conftest import BotRunner, answer
from tests.emulators.discord_api import DiscordEmulator, Interaction, Message
from tests.settings import with_settings

USER = 4242
RENDER_S = 120.0  # a tiny render takes seconds, but the machine may be busy


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """More than the free tier's two jobs in flight: these tests press several edit buttons at once."""
    return with_settings(settings, quotas=QuotaSettings(default_tier="unlimited"))


def one_image_ids(request_id: str) -> list[str]:
    return [
        f"ib:us:{request_id}:0",
        f"ib:uc:{request_id}:0",
        f"ib:vl:{request_id}:0",
        f"ib:vs:{request_id}:0",
        f"ib:vr:{request_id}:0",
        f"ib:zo:{request_id}:0:200",
        f"ib:zo:{request_id}:0:150",
        f"ib:zc:{request_id}:0",
        *(f"ib:pn:{request_id}:0:{way}" for way in "lrud"),
    ]


async def result_of(emulator: DiscordEmulator, token: str, within_s: float = RENDER_S) -> Message:
    return await emulator.result(token, within_s)


def request_id_in(message: Message) -> str:
    return message.files[0].filename.rsplit(".", 1)[0].split("-")[0]


async def stored(bots: BotRunner, message: Message) -> GenerationRequest:
    return await bots.pipeline.runtime.service.queue.load(request_id_in(message))


async def one_image(bots: BotRunner, prompt: str) -> tuple[str, Message]:
    """/imagine one image, then U1: its request id and the message with the one-image buttons."""
    emulator = bots.emulator
    command = await emulator.slash("imagine", {"prompt": prompt, "count": 1}, user_id=USER)
    grid = await result_of(emulator, command.token)
    request_id = request_id_in(grid)
    upscale = await emulator.click(grid, f"ib:u:{request_id}:0", user_id=USER)
    single = await result_of(emulator, upscale.token, 30)
    assert single.custom_ids()[:12] == one_image_ids(request_id)
    return request_id, single


async def modal_of(emulator: DiscordEmulator, press: Interaction) -> dict[str, object]:
    return await emulator.wait_for(lambda: press.modal, 20)  # type: ignore[no-any-return]


def inputs(modal: dict[str, object]) -> dict[str, str]:
    rows = modal["components"]
    assert isinstance(rows, list)
    return {c["custom_id"]: c.get("value", "") for row in rows for c in row["components"]}


async def test_vary_region_picker_and_its_prompt_modal_survive_a_restart(
    bots: BotRunner, discord_emulator: DiscordEmulator
) -> None:
    emulator = discord_emulator
    await bots.pipeline.start_worker()
    first = await bots.start()
    request_id, single = await one_image(bots, "a castle on a hill --seed 5")

    opened = await emulator.click(single, f"ib:vr:{request_id}:0", user_id=USER)
    picker = await emulator.wait_for(lambda: emulator.original(opened.token), 20)
    assert picker.ephemeral and picker.content.startswith("Vary (Region) of image 1")
    assert picker.custom_ids()[9:] == [f"ib:rs:{request_id}:0:0", f"ib:rp:{request_id}:0:0"]
    await emulator.click(picker, picker.custom_ids()[0], user_id=USER)  # the top-left square
    await emulator.wait_for(lambda: picker.custom_ids()[9] == f"ib:rs:{request_id}:0:1", 20)

    await bots.stop(first)  # a new bot process: the picker's squares and its buttons still work
    await bots.start()
    await emulator.click(picker, picker.custom_ids()[8], user_id=USER)  # the bottom-right square
    await emulator.wait_for(lambda: picker.custom_ids()[10] == f"ib:rp:{request_id}:0:101", 20)
    reprompt = await emulator.click(picker, f"ib:rp:{request_id}:0:101", user_id=USER)
    modal = await modal_of(emulator, reprompt)
    assert inputs(modal) == {"prompt": "a castle on a hill"}  # prefilled
    submitted = await emulator.submit_modal(reprompt, {"prompt": "a castle with a red door"}, user_id=USER)

    repainted = await result_of(emulator, submitted.token)
    request = await stored(bots, repainted)
    assert (request.mode, request.parent_id, request.prompt) == (
        Mode.INPAINT,
        request_id,
        "a castle with a red door",
    )
    assert not repainted.ephemeral  # the picker was private; the result is not
    assert repainted.custom_ids()[:12] == one_image_ids(request.request_id)


async def test_zoom_pan_upscale_custom_zoom_and_remix_on_discord(
    bots: BotRunner, discord_emulator: DiscordEmulator
) -> None:
    emulator = discord_emulator
    await bots.pipeline.start_worker()
    await bots.start()
    request_id, single = await one_image(bots, "a quiet harbour --seed 8")

    presses = []
    for custom_id in (f"ib:zo:{request_id}:0:150", f"ib:pn:{request_id}:0:d", f"ib:us:{request_id}:0"):
        press = await emulator.click(single, custom_id, user_id=USER)
        await emulator.wait_for(lambda: (m := emulator.original(press.token)) and m.content, 30)  # noqa: B023
        presses.append(press)
    results = [await result_of(emulator, press.token, RENDER_S * 2) for press in presses]
    requests = [await stored(bots, result) for result in results]
    assert [r.mode for r in requests] == [Mode.OUTPAINT, Mode.OUTPAINT, Mode.UPSCALE_SUBTLE]
    assert [r.canvas for r in requests[:2]] == [Canvas(zoom=1.5), Canvas(pan="down", pan_fraction=0.5)]
    assert "Upscale (Subtle) 2× of image 1" in results[2].content
    for result, request in zip(results, requests, strict=True):
        assert result.custom_ids()[:12] == one_image_ids(request.request_id)

    custom = await emulator.click(single, f"ib:zc:{request_id}:0", user_id=USER)
    assert set(inputs(await modal_of(emulator, custom))) == {"factor"}
    wrong = await emulator.submit_modal(custom, {"factor": "2.5"}, user_id=USER)
    refusal = await answer(emulator, wrong)
    assert refusal.ephemeral and "from 1.1 to 2" in refusal.content
    again = await emulator.click(single, f"ib:zc:{request_id}:0", user_id=USER)
    await modal_of(emulator, again)
    zoomed = await result_of(
        emulator, (await emulator.submit_modal(again, {"factor": "1.3"}, user_id=USER)).token
    )
    assert (await stored(bots, zoomed)).canvas == Canvas(zoom=1.3)

    settings = await emulator.slash("settings", {"remix": True}, user_id=USER)
    assert "remix on" in (await answer(emulator, settings)).content
    vary = await emulator.click(single, f"ib:vs:{request_id}:0", user_id=USER)
    assert inputs(await modal_of(emulator, vary)) == {"prompt": "a quiet harbour"}
    remixed = await emulator.submit_modal(vary, {"prompt": "a stormy harbour --no boats"}, user_id=USER)
    varied = await result_of(emulator, remixed.token)
    request = await stored(bots, varied)
    assert (request.mode, request.prompt, request.negative_prompt) == (
        Mode.VARIATION,
        "a stormy harbour",
        "boats",
    )
