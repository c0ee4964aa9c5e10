"""Button ids and rows, as every front end shows them."""

import pytest

from core import constants as c
from core.commands.buttons import (
    Button,
    button_label,
    decode_button,
    grid_buttons,
    region_buttons,
    result_buttons,
    single_buttons,
)
from core.commands.regions import ALL_CELLS
from core.errors import InvalidRequest
from core.models.request import Mode

REQUEST_ID = "abcdefghijklmnop"


def test_grid_buttons_keep_each_images_own_index_when_one_is_withheld() -> None:
    upscale, vary = grid_buttons(REQUEST_ID, [0, 2, 3])  # image 2 of 4 withheld by the image check
    assert [b.index for b in upscale] == [0, 2, 3]
    assert [b.action for b in upscale] == [c.ACTION_UPSCALE] * 3
    assert [b.index for b in vary[:-1]] == [0, 2, 3]
    assert vary[-1] == Button(c.ACTION_REROLL, REQUEST_ID)
    assert decode_button(upscale[1].encode()) == Button(c.ACTION_UPSCALE, REQUEST_ID, 2)


def test_single_image_rows_are_midjourneys_layout() -> None:
    rows = single_buttons(REQUEST_ID, 2)
    assert [[button_label(b) for b in row] for row in rows] == [
        ["Upscale (Subtle)", "Upscale (Creative)"],
        ["Vary (Subtle)", "Vary (Strong)", "Vary (Region)"],
        ["Zoom Out 2×", "Zoom Out 1.5×", "Custom Zoom"],
        ["⬅️", "➡️", "⬆️", "⬇️"],
        ["Describe", "ⓘ Info", "🗑 Delete"],
    ]
    assert all(b.index == 2 for row in rows[:-1] for b in row)


def test_every_button_id_round_trips_and_fits_telegram_and_discord() -> None:
    rows = [
        *grid_buttons(REQUEST_ID, [0, 1, 2, 3]),
        *single_buttons(REQUEST_ID, 3),
        *region_buttons(REQUEST_ID, 3, ALL_CELLS - 1),
    ]
    for button in (b for row in rows for b in row):
        data = button.encode()
        assert len(data.encode()) <= 64 and len(data) <= 100
        assert decode_button(data) == button


def test_region_toggles_carry_their_cell_and_the_selection() -> None:
    picker = region_buttons(REQUEST_ID, 0, 0b000010001)  # top-left and middle chosen
    labels = [[button_label(b) for b in row] for row in picker[:3]]
    assert labels == [["🟥", "⬜", "⬜"], ["⬜", "🟥", "⬜"], ["⬜", "⬜", "⬜"]]
    assert picker[0][0].cells == 0b000010000  # pressing top-left drops it
    assert picker[2][2].cells == 0b100010001  # pressing bottom-right adds it
    repaint, reprompt = picker[3]
    assert (repaint.action, reprompt.action) == (c.ACTION_REGION_SUBMIT, c.ACTION_REGION_PROMPT)
    assert repaint.cells == reprompt.cells == 0b000010001


@pytest.mark.parametrize(
    "data",
    [
        f"ib:zo:{REQUEST_ID}:0:250",  # a zoom beyond 2×
        f"ib:zo:{REQUEST_ID}:0:105",
        f"ib:zo:{REQUEST_ID}:0",  # a zoom without its factor
        f"ib:pn:{REQUEST_ID}:0:x",
        f"ib:rs:{REQUEST_ID}:0:200",  # more than nine cells
        f"ib:rc:{REQUEST_ID}:0:9",  # a tenth cell
        f"ib:us:{REQUEST_ID}:0:1",  # an argument where none is taken
        f"ib:us:{REQUEST_ID}",  # no image
        f"ib:r:{REQUEST_ID}:0",
    ],
)
def test_garbled_arguments_are_refused(data: str) -> None:
    with pytest.raises(InvalidRequest):
        decode_button(data)


def test_edits_get_the_one_image_rows_and_grids_the_grid_rows() -> None:
    assert result_buttons(REQUEST_ID, Mode.INPAINT, [0]) == single_buttons(REQUEST_ID, 0)
    assert result_buttons(REQUEST_ID, Mode.UPSCALE_SUBTLE, [0]) == single_buttons(REQUEST_ID, 0)
    assert result_buttons(REQUEST_ID, Mode.VARIATION, [0, 1]) == grid_buttons(REQUEST_ID, [0, 1])
    assert result_buttons(REQUEST_ID, None, [0]) == grid_buttons(REQUEST_ID, [0])
