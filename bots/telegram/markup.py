"""Inline keyboards (reply markup) under results: core's button ids as callback_data, and links to full-size images."""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from core.commands.buttons import Button, button_label, grid_buttons, single_buttons
from core.models.result import ResultEvent

CALLBACK_DATA_MAX_BYTES = 64


def button(core_button: Button, place: int | None = None) -> InlineKeyboardButton:
    """One of core's buttons as an inline button (`place`: a /history row's number)."""
    data = core_button.encode()
    if len(data.encode()) > CALLBACK_DATA_MAX_BYTES:
        raise ValueError(f"callback_data {data!r} is over {CALLBACK_DATA_MAX_BYTES} bytes")
    return InlineKeyboardButton(button_label(core_button, place), callback_data=data)


_button = button


def _public_url(url: str | None) -> str | None:
    return url if url and url.startswith(("https://", "http://")) else None


def grid_keyboard(event: ResultEvent) -> InlineKeyboardMarkup:
    """U1–Un, V1–Vn and 🔄, and a "Full size" link when the grid has a public URL."""
    rows = [[_button(b) for b in row] for row in grid_buttons(event.request_id, event.shown_indices)]
    link = _public_url(event.grid.url if event.grid else None)
    if link:
        rows.append([InlineKeyboardButton("Full size", url=link)])
    return InlineKeyboardMarkup(rows)


def single_keyboard(request_id: str, index: int, url: str | None = None) -> InlineKeyboardMarkup:
    """Vary (strong), Vary (subtle), Upscale 2× under one image."""
    rows = [[_button(b) for b in row] for row in single_buttons(request_id, index)]
    link = _public_url(url)
    if link:
        rows.append([InlineKeyboardButton("Open original", url=link)])
    return InlineKeyboardMarkup(rows)
