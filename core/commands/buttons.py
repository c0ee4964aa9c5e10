"""Button ids shared by every front end: "ib:<action>:<request_id>[:<index>[:<arg>]]".

They fit Telegram's 64-byte callback_data and Discord's 100-character custom_id (at most 31 characters), carry
all the state a button needs (so buttons work after restarts and on old messages), and are parsed strictly: a
forged or garbled id is rejected, and ownership is checked by the service against the stored request, never
trusted from the id. The argument holds what a press needs beyond the image: the cells of a region (9 bits, in
hex), a zoom factor (× 10) or a pan direction.

Layouts (Midjourney's): under a grid U1–U4, V1–V4 and 🔄; under one image Upscale (Subtle) / (Creative),
Vary (Subtle) / (Strong) / (Region), Zoom Out 2× / 1.5× / Custom Zoom, and ⬅️ ➡️ ⬆️ ⬇️. The region picker is
the 3×3 cells (each button's argument is the selection after toggling that cell) and Repaint / New prompt.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from core import constants as c
from core.commands.regions import ALL_CELLS
from core.errors import InvalidRequest
from core.models.request import Mode

ACTIONS = {
    c.ACTION_UPSCALE: "upscale",
    c.ACTION_VARY: "vary",
    c.ACTION_REROLL: "reroll",
    c.ACTION_VARY_STRONG: "vary_strong",
    c.ACTION_VARY_SUBTLE: "vary_subtle",
    c.ACTION_UPSCALE_2X: "upscale_2x",
    c.ACTION_INFO: "info",
    c.ACTION_DELETE: "delete",
    c.ACTION_SHOW: "show",
    c.ACTION_HISTORY_OLDER: "history_older",
    c.ACTION_HISTORY_NEWER: "history_newer",
    c.ACTION_DESCRIBE: "describe",
    c.ACTION_SUGGESTION: "suggestion",
    c.ACTION_UPSCALE_SUBTLE: "upscale_subtle",
    c.ACTION_UPSCALE_CREATIVE: "upscale_creative",
    c.ACTION_VARY_REGION: "vary_region",
    c.ACTION_REGION_CELL: "region_cell",
    c.ACTION_REGION_SUBMIT: "region_submit",
    c.ACTION_REGION_PROMPT: "region_prompt",
    c.ACTION_ZOOM: "zoom",
    c.ACTION_ZOOM_CUSTOM: "zoom_custom",
    c.ACTION_PAN: "pan",
}
NO_INDEX = {
    c.ACTION_REROLL,
    c.ACTION_INFO,
    c.ACTION_DELETE,
    c.ACTION_SHOW,
    c.ACTION_HISTORY_OLDER,
    c.ACTION_HISTORY_NEWER,
}
# The argument each action takes (a full match), and those that take none.
ARGUMENTS = {
    c.ACTION_REGION_CELL: re.compile(r"[0-8][0-9a-f]{1,3}"),  # the cell, then the selection before it
    c.ACTION_REGION_SUBMIT: re.compile(r"[0-9a-f]{1,3}"),
    c.ACTION_REGION_PROMPT: re.compile(r"[0-9a-f]{1,3}"),
    c.ACTION_ZOOM: re.compile(r"1[1-9][0-9]|200"),  # the factor × 100
    c.ACTION_PAN: re.compile(r"[lrud]"),
}
PAN_DIRECTIONS = {"l": "left", "r": "right", "u": "up", "d": "down"}
_PAN_ARROWS = {"l": "⬅️", "r": "➡️", "u": "⬆️", "d": "⬇️"}
TEMPLATE = r"(?P<action>[a-z0-9]{1,2}):(?P<request_id>[a-z2-7]{16})(?::(?P<index>[0-3])(?::(?P<arg>[0-9a-z]{1,4}))?)?"
_BUTTON_RE = re.compile(rf"^{TEMPLATE}$")
PREFIX = "ib"  # namespaced so other bots' buttons in the same app never collide
UNKNOWN = "That button isn't one I know; please run /imagine again."


@dataclass(frozen=True)
class Button:
    action: str  # one of core.constants.ACTION_*
    request_id: str
    index: int | None = None
    arg: str | None = None

    def encode(self) -> str:
        suffix = "" if self.index is None else f":{self.index}"
        if self.arg is not None:
            suffix += f":{self.arg}"
        return f"{PREFIX}:{self.action}:{self.request_id}{suffix}"

    @property
    def cells(self) -> int:
        """The region's cells (9 bits) after pressing this region button; 0 for any other button."""
        if self.action not in _REGION_ACTIONS or not self.arg:
            return 0
        if self.action == c.ACTION_REGION_CELL:
            return int(self.arg[1:], 16) ^ (1 << int(self.arg[0]))
        return int(self.arg, 16)


_REGION_ACTIONS = {c.ACTION_REGION_CELL, c.ACTION_REGION_SUBMIT, c.ACTION_REGION_PROMPT}


def decode_button(data: str) -> Button:
    """Parse a button id; anything malformed raises InvalidRequest("button")."""
    prefix, _, rest = data.partition(":")
    match = _BUTTON_RE.match(rest) if prefix == PREFIX else None
    if match is None or match["action"] not in ACTIONS:
        raise InvalidRequest("button", UNKNOWN)
    action, index, arg = match["action"], match["index"], match["arg"]
    if (action in NO_INDEX) == (index is not None):
        raise InvalidRequest("button", UNKNOWN)
    pattern = ARGUMENTS.get(action)
    if (pattern is None) != (arg is None) or (pattern is not None and not pattern.fullmatch(arg or "")):
        raise InvalidRequest("button", UNKNOWN)
    selection = (arg or "0")[1:] if action == c.ACTION_REGION_CELL else arg or "0"
    if action in _REGION_ACTIONS and int(selection, 16) > ALL_CELLS:
        raise InvalidRequest("button", UNKNOWN)
    return Button(action, match["request_id"], None if index is None else int(index), arg)


def grid_buttons(request_id: str, indices: Sequence[int]) -> list[list[Button]]:
    """Rows for a finished grid: U and V for each image shown, by the image's own index (so with image 2 of 4
    withheld the buttons are U1 U3 U4, each pointing at its own image), and 🔄 (reroll)."""
    upscale = [Button(c.ACTION_UPSCALE, request_id, i) for i in indices]
    vary = [Button(c.ACTION_VARY, request_id, i) for i in indices]
    return [upscale, [*vary, Button(c.ACTION_REROLL, request_id)]]


def single_buttons(request_id: str, index: int) -> list[list[Button]]:
    """Rows under one full-size image, as Midjourney lays them out: upscale, vary, zoom out, pan."""

    def button(action: str, arg: str | None = None) -> Button:
        return Button(action, request_id, index, arg)

    return [
        [button(c.ACTION_UPSCALE_SUBTLE), button(c.ACTION_UPSCALE_CREATIVE)],
        [button(c.ACTION_VARY_SUBTLE), button(c.ACTION_VARY_STRONG), button(c.ACTION_VARY_REGION)],
        [button(c.ACTION_ZOOM, "200"), button(c.ACTION_ZOOM, "150"), button(c.ACTION_ZOOM_CUSTOM)],
        [button(c.ACTION_PAN, direction) for direction in PAN_DIRECTIONS],
        [Button(c.ACTION_DESCRIBE, request_id, index), *library_buttons(request_id)],
    ]


# Results of these modes are one image, shown with the buttons for one image.
SINGLE_MODES = frozenset(
    {Mode.INPAINT, Mode.OUTPAINT, Mode.UPSCALE, Mode.UPSCALE_SUBTLE, Mode.UPSCALE_CREATIVE}
)


def result_buttons(request_id: str, mode: Mode | None, indices: Sequence[int]) -> list[list[Button]]:
    """The rows under a delivered result: the one-image rows for an edit or upscale, else the grid's."""
    if mode in SINGLE_MODES and len(indices) == 1:
        return single_buttons(request_id, indices[0])
    return grid_buttons(request_id, indices)


def region_buttons(request_id: str, index: int, cells: int) -> list[list[Button]]:
    """The region picker: 3×3 toggles (each carrying its cell and the current selection), then Repaint and
    Repaint with a new prompt (both carrying the selection)."""
    rows = [
        [Button(c.ACTION_REGION_CELL, request_id, index, f"{row * 3 + col}{cells:x}") for col in range(3)]
        for row in range(3)
    ]
    chosen = f"{cells:x}"
    rows.append(
        [
            Button(c.ACTION_REGION_SUBMIT, request_id, index, chosen),
            Button(c.ACTION_REGION_PROMPT, request_id, index, chosen),
        ]
    )
    return rows


def library_buttons(request_id: str) -> list[Button]:
    """ⓘ (how it was made) and 🗑 (delete, for its owner) under a result shown from /history or at full size."""
    return [Button(c.ACTION_INFO, request_id), Button(c.ACTION_DELETE, request_id)]


def history_buttons(request_ids: Sequence[str], newer: str | None, older: str | None) -> list[list[Button]]:
    """/history: one row per result (show it again, ⓘ, 🗑), then ◀ newer / older ▶ from the page's ends."""
    rows = [[Button(c.ACTION_SHOW, request_id), *library_buttons(request_id)] for request_id in request_ids]
    paging = []
    if newer is not None:
        paging.append(Button(c.ACTION_HISTORY_NEWER, newer))
    if older is not None:
        paging.append(Button(c.ACTION_HISTORY_OLDER, older))
    return [*rows, paging] if paging else rows


def button_label(button: Button, place: int | None = None) -> str:
    """The button's text; `place` is the 1-based place of a /history row's result."""
    if button.action == c.ACTION_SHOW:
        return f"#{place} Show" if place is not None else "Show"
    number = "" if button.index is None else str(button.index + 1)
    if button.action == c.ACTION_REGION_CELL:
        cell, selected = int((button.arg or "0")[0]), int((button.arg or "00")[1:], 16)
        return "🟥" if selected >> cell & 1 else "⬜"
    if button.action == c.ACTION_ZOOM:
        factor = int(button.arg or "200") / 100
        return f"Zoom Out {factor:g}×"
    if button.action == c.ACTION_PAN:
        return _PAN_ARROWS[button.arg or "l"]
    return {
        c.ACTION_UPSCALE: f"U{number}",
        c.ACTION_VARY: f"V{number}",
        c.ACTION_REROLL: "🔄",
        c.ACTION_VARY_STRONG: "Vary (Strong)",
        c.ACTION_VARY_SUBTLE: "Vary (Subtle)",
        c.ACTION_UPSCALE_2X: "Upscale 2×",
        c.ACTION_INFO: "ⓘ Info",
        c.ACTION_DELETE: "🗑 Delete",
        c.ACTION_HISTORY_NEWER: "◀ Newer",
        c.ACTION_HISTORY_OLDER: "Older ▶",
        c.ACTION_DESCRIBE: "Describe",
        c.ACTION_SUGGESTION: f"Imagine {number}",
        c.ACTION_UPSCALE_SUBTLE: "Upscale (Subtle)",
        c.ACTION_UPSCALE_CREATIVE: "Upscale (Creative)",
        c.ACTION_VARY_REGION: "Vary (Region)",
        c.ACTION_REGION_SUBMIT: "Repaint",
        c.ACTION_REGION_PROMPT: "Repaint with a new prompt…",
        c.ACTION_ZOOM_CUSTOM: "Custom Zoom",
    }[button.action]
