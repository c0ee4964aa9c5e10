"""Inline keyboards (reply markup) under results: core's button ids as callback_data, and links to full-size images."""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from core.commands.buttons import Button, button_label, result_buttons, single_buttons
from core.commands.dialogs import Picker
from core.models.request import Mode
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


def grid_keyboard(event: ResultEvent, mode: Mode | None = None) -> InlineKeyboardMarkup:
    """U1–Un, V1–Vn and 🔄 (or, under an edit or upscale of one image, the one-image rows), and a
    "Full size" link when the result has a public URL."""
    rows = [[_button(b) for b in row] for row in result_buttons(event.request_id, mode, event.shown_indices)]
    full = event.grid or (event.images[0] if len(event.images) == 1 else None)
    link = _public_url(full.url if full else None)
    if link:
        rows.append([InlineKeyboardButton("Full size", url=link)])
    return InlineKeyboardMarkup(rows)


def single_keyboard(request_id: str, index: int, url: str | None = None) -> InlineKeyboardMarkup:
    """Upscale, Vary, Zoom Out and Pan under one image (core's one-image rows)."""
    rows = [[_button(b) for b in row] for row in single_buttons(request_id, index)]
    link = _public_url(url)
    if link:
        rows.append([InlineKeyboardButton("Open original", url=link)])
    return InlineKeyboardMarkup(rows)


def picker_keyboard(picker: Picker) -> InlineKeyboardMarkup:
    """Vary (Region)'s 3×3 toggles, then Repaint / Repaint with a new prompt."""
    return InlineKeyboardMarkup([[_button(b) for b in row] for row in picker.rows])
