"""Button ids and rows, as every front end shows them."""

from core import constants as c
from core.commands.buttons import Button, decode_button, grid_buttons

REQUEST_ID = "abcdefghijklmnop"


def test_grid_buttons_keep_each_images_own_index_when_one_is_withheld() -> None:
    upscale, vary = grid_buttons(REQUEST_ID, [0, 2, 3])  # image 2 of 4 withheld by the image check
    assert [b.index for b in upscale] == [0, 2, 3]
    assert [b.action for b in upscale] == [c.ACTION_UPSCALE] * 3
    assert [b.index for b in vary[:-1]] == [0, 2, 3]
    assert vary[-1] == Button(c.ACTION_REROLL, REQUEST_ID)
    assert decode_button(upscale[1].encode()) == Button(c.ACTION_UPSCALE, REQUEST_ID, 2)
