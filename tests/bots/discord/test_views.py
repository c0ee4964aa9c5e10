"""Unit tests: option flags and button rows, without a network."""

from __future__ import annotations

import discord

from bots.discord.flags import with_flags
from bots.discord.views import button_view
from core.commands.buttons import grid_buttons, single_buttons
from core.commands.grammar import parse_imagine
from core.settings import LimitsSettings

REQUEST_ID = "abcdefghijklmnop"


def test_options_become_flags_core_parses() -> None:
    text = with_flags(
        "a lighthouse",
        {
            "aspect": "16:9",
            "seed": 7,
            "negative": "boats, people",
            "steps": 3,
            "guidance": 6.5,
            "model": "tiny",
            "count": 2,
        },
    )
    options = parse_imagine(text, default_model="tiny", limits=LimitsSettings())
    assert (options.prompt, options.seed, options.steps, options.guidance, options.n) == (
        "a lighthouse",
        7,
        3,
        6.5,
        2,
    )
    assert options.negative_prompt == "boats, people" and options.width > options.height


def test_unset_options_add_nothing() -> None:
    assert with_flags("  a cat ", {"seed": None, "negative": None}) == "a cat"


def _rows(view: discord.ui.View) -> list[list[dict[str, object]]]:
    return [row["components"] for row in view.to_components()]


def test_grid_rows_hold_at_most_five_and_the_link_fits_in() -> None:
    view = button_view(grid_buttons(REQUEST_ID, range(4)), "https://cdn.example/grid.png")
    rows = _rows(view)
    assert [len(row) for row in rows] == [5, 5]
    assert rows[0][-1]["url"] == "https://cdn.example/grid.png" and rows[0][-1]["label"] == "Full size"
    assert view.timeout is None and all(len(str(b.get("custom_id", ""))) <= 100 for row in rows for b in row)


def test_no_link_for_local_files_and_single_image_buttons() -> None:
    view = button_view(single_buttons(REQUEST_ID, 1), "file:///tmp/x.png")
    labels = [button["label"] for row in _rows(view) for button in row]
    assert labels == ["Vary (strong)", "Vary (subtle)", "Upscale 2×"]
