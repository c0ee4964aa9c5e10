"""The rows of buttons under a result: core's button rows laid out for Discord (≤ 5 a row, ≤ 5 rows), plus a
link button to the full-size original when it has a public URL.

The items themselves come from `item` (buttons.CoreButton, the DynamicItem that also handles their presses),
so this module knows only the layout and imports nothing else of the bot.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import discord

from core.commands.buttons import Button
from core.models.result import ResultEvent

ROW_LIMIT = 5
ROWS_LIMIT = 5
FULL_SIZE_LABEL = "Full size"

ItemFactory = Callable[[Button, int], discord.ui.Item[Any]]  # (core button, row) → the Discord item


def button_view(rows: list[list[Button]], item: ItemFactory, link_url: str | None = None) -> discord.ui.View:
    """A persistent view (no timeout) of core button rows, split so no row holds more than five."""
    view = discord.ui.View(timeout=None)
    row_index = 0
    sizes: list[int] = []
    for row in rows:
        for start in range(0, len(row), ROW_LIMIT):
            chunk = row[start : start + ROW_LIMIT]
            for button in chunk:
                view.add_item(item(button, row_index))
            sizes.append(len(chunk))
            row_index += 1
    if link_url and is_public_url(link_url):
        free = next((i for i, size in enumerate(sizes) if size < ROW_LIMIT), len(sizes))
        if free < ROWS_LIMIT:
            link: discord.ui.Button[Any] = discord.ui.Button(label=FULL_SIZE_LABEL, url=link_url, row=free)
            view.add_item(link)
    return view


def is_public_url(url: str | None) -> bool:
    return bool(url) and str(url).startswith(("https://", "http://"))


def full_size_url(event: ResultEvent) -> str | None:
    """The URL of the full-size original (the grid of several images, or the one image), when public."""
    image = event.grid or (event.images[0] if event.images else None)
    if image is None or not is_public_url(image.url):
        return None
    return image.url
