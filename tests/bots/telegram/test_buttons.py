"""Result buttons end to end: every callback query is answered, and after the image check withholds an image
the keyboard, the picture shown and what U<i> sends all agree."""

from __future__ import annotations

import io
import secrets

from PIL import Image

from tests.bots.telegram.conftest import ALICE, ALICE_DM, TelegramBot, last_request, render, request_id_of
from tests.drawings import figure
from tests.emulators.telegram_api import Sent

UNKNOWN_BUTTON = "That button isn't one I know; please run /imagine again."
# Four pictures the image check tells apart: the second is exposed (withheld), the others dressed, each on
# its own background so a picture can be recognised in the grid and in the full-size file.
BACKGROUNDS = [(200, 40, 40), (90, 120, 160), (40, 160, 60), (230, 200, 40)]


def four_figures() -> list[Image.Image]:
    """Figure i on background i; figure 2 undressed (the image check withholds it)."""
    return [figure(index != 1, colour) for index, colour in enumerate(BACKGROUNDS)]


def background(image: Image.Image, x: int, y: int) -> tuple[int, int, int]:
    r, g, b = image.convert("RGB").getpixel((x, y))  # type: ignore[misc]
    return r, g, b


def near(colour: tuple[int, int, int], expected: tuple[int, int, int]) -> bool:
    return all(abs(a - b) <= 25 for a, b in zip(colour, expected, strict=True))


async def test_every_callback_query_is_answered_however_malformed(telegram_bot: TelegramBot) -> None:
    """Defect 28: callback data without our prefix got no answerCallbackQuery (the button spun)."""
    emulator = telegram_bot.emulator
    menu = await telegram_bot.command(ALICE_DM, ALICE, "/help")
    malformed = [
        "garbage",
        secrets.token_bytes(64).decode("latin-1"),  # 64 random bytes
        "ib:",
        "ib:zz:aaaaaaaaaaaaaaaa:9",
        "st:nonsense",
        ":",
    ]
    queries = [await emulator.press(ALICE_DM, ALICE, menu, data) for data in malformed]
    for query in queries:
        answer = await emulator.wait_for(lambda: emulator.answer(query))  # noqa: B023
        assert answer.show_alert and answer.text, (query, answer)
    answers = [emulator.answer(query) for query in queries]
    assert [a.text for a in answers if a is not None][:2] == [UNKNOWN_BUTTON, UNKNOWN_BUTTON]
    assert (
        emulator.in_chat(ALICE_DM.id, "sendPhoto") == []
        and emulator.in_chat(ALICE_DM.id, "sendDocument") == []
    )


async def test_with_image_2_withheld_the_buttons_the_grid_and_u3_agree(telegram_bot: TelegramBot) -> None:
    """Defect 9: with image 2 of 4 withheld, U2 failed, U3 sent the wrong cell and image 4 was out of reach."""
    bot, emulator = telegram_bot, telegram_bot.emulator
    await bot.announce_idle_worker()
    asked = await emulator.user_message(ALICE_DM, ALICE, "/imagine four friends on a beach --n 4 --seed 3")
    await bot.reply_to(ALICE_DM, asked, prefix="Queued — position")
    request_id = await last_request(bot, ALICE)
    await render(bot, request_id, *four_figures())

    photo = await bot.photo_reply(ALICE_DM, asked)
    assert request_id_of(photo) == request_id
    assert [b["text"] for b in photo.buttons()] == ["U1", "U3", "U4", "V1", "V3", "V4", "🔄"]
    assert photo.callback_data() == [
        *(f"ib:u:{request_id}:{i}" for i in (0, 2, 3)),
        *(f"ib:v:{request_id}:{i}" for i in (0, 2, 3)),
        f"ib:r:{request_id}",
    ]
    assert "Image 2 didn't pass the safety check and was left out." in (photo.caption or "")
    with Image.open(io.BytesIO(photo.file or b"")) as grid:
        half = grid.width // 2  # 2×2: the shown images in button order, the fourth cell empty
        cells = [background(grid, 5, 5), background(grid, half + 5, 5), background(grid, 5, half + 5)]
    assert [near(cell, BACKGROUNDS[i]) for cell, i in zip(cells, (0, 2, 3), strict=True)] == [True] * 3

    async def press(data: str) -> str:
        return await emulator.press(ALICE_DM, ALICE, photo, data)

    await press(f"ib:u:{request_id}:2")  # U3
    document: Sent = await emulator.wait_for(
        lambda: next(iter(emulator.in_chat(ALICE_DM.id, "sendDocument")), None)
    )
    assert (document.caption or "").startswith("Image 3 · 512×512")
    with Image.open(io.BytesIO(document.file or b"")) as full:
        assert near(background(full, 5, 5), BACKGROUNDS[2])  # image 3 itself, not the third cell shown
    assert document.callback_data()[0] == f"ib:us:{request_id}:2"

    await press(f"ib:u:{request_id}:3")  # U4 reaches image 4
    fourth = await emulator.wait_for(
        lambda: next((s for s in emulator.in_chat(ALICE_DM.id, "sendDocument") if s is not document), None)
    )
    assert (fourth.caption or "").startswith("Image 4 ·")
    withheld = await press(f"ib:u:{request_id}:1")  # an old or forged U2: a clear answer, no file
    answer = await emulator.wait_for(lambda: emulator.answer(withheld))
    assert answer.show_alert and answer.text == "Image 2 of that grid isn't available (any more)."
    assert len(emulator.in_chat(ALICE_DM.id, "sendDocument")) == 2
