"""Unit tests: the rows of buttons under a result, without a network."""

from __future__ import annotations

import discord

from bots.discord.buttons import result_view
from core.commands.buttons import grid_buttons, single_buttons

REQUEST_ID = "abcdefghijklmnop"


def _rows(view: discord.ui.View) -> list[list[dict[str, object]]]:
    return [row["components"] for row in view.to_components()]


def test_grid_rows_hold_at_most_five_and_the_link_fits_in() -> None:
    view = result_view(grid_buttons(REQUEST_ID, range(4)), "https://cdn.example/grid.png")
    rows = _rows(view)
    assert [len(row) for row in rows] == [5, 5]
    assert rows[0][-1]["url"] == "https://cdn.example/grid.png" and rows[0][-1]["label"] == "Full size"
    assert view.timeout is None and all(len(str(b.get("custom_id", ""))) <= 100 for row in rows for b in row)


def test_no_link_for_local_files_and_single_image_buttons() -> None:
    view = result_view(single_buttons(REQUEST_ID, 1), "file:///tmp/x.png")
    labels = [button["label"] for row in _rows(view) for button in row]
    assert labels == [
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
        "Describe",
        "ⓘ Info",
        "🗑 Delete",
    ]
    assert [len(row) for row in _rows(view)] == [2, 3, 3, 4, 3]
