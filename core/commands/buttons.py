"""Button ids shared by every front end: "<action>:<request_id>[:<index>]".

They fit Telegram's 64-byte callback_data and Discord's 100-character custom_id, carry all the state a button
needs (so buttons work after restarts and on old messages), and are parsed strictly: a forged or garbled id is
rejected, and ownership is checked by the service against the stored request, never trusted from the id.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from core import constants as c
from core.errors import InvalidRequest

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
}
INDEXED = {
    c.ACTION_UPSCALE,
    c.ACTION_VARY,
    c.ACTION_VARY_STRONG,
    c.ACTION_VARY_SUBTLE,
    c.ACTION_UPSCALE_2X,
    c.ACTION_DESCRIBE,
    c.ACTION_SUGGESTION,
}
_BUTTON_RE = re.compile(r"^(?P<action>[a-z0-9]{1,2}):(?P<request_id>[a-z2-7]{16})(?::(?P<index>[0-3]))?$")
PREFIX = "ib"  # namespaced so other bots' buttons in the same app never collide


@dataclass(frozen=True)
class Button:
    action: str  # one of core.constants.ACTION_*
    request_id: str
    index: int | None = None

    def encode(self) -> str:
        suffix = "" if self.index is None else f":{self.index}"
        return f"{PREFIX}:{self.action}:{self.request_id}{suffix}"


def decode_button(data: str) -> Button:
    """Parse a button id; anything malformed raises InvalidRequest("button")."""
    prefix, _, rest = data.partition(":")
    match = _BUTTON_RE.match(rest) if prefix == PREFIX else None
    if match is None or match["action"] not in ACTIONS:
        raise InvalidRequest("button", "That button isn't one I know; please run /imagine again.")
    action, index = match["action"], match["index"]
    if (action in INDEXED) != (index is not None):
        raise InvalidRequest("button", "That button isn't one I know; please run /imagine again.")
    return Button(action, match["request_id"], None if index is None else int(index))


def grid_buttons(request_id: str, indices: Sequence[int]) -> list[list[Button]]:
    """Rows for a finished grid: U and V for each image shown, by the image's own index (so with image 2 of 4
    withheld the buttons are U1 U3 U4, each pointing at its own image), and 🔄 (reroll)."""
    upscale = [Button(c.ACTION_UPSCALE, request_id, i) for i in indices]
    vary = [Button(c.ACTION_VARY, request_id, i) for i in indices]
    return [upscale, [*vary, Button(c.ACTION_REROLL, request_id)]]


def single_buttons(request_id: str, index: int) -> list[list[Button]]:
    """Rows under one full-size image: vary strong / subtle, upscale 2×."""
    return [
        [
            Button(c.ACTION_VARY_STRONG, request_id, index),
            Button(c.ACTION_VARY_SUBTLE, request_id, index),
            Button(c.ACTION_UPSCALE_2X, request_id, index),
        ],
        [Button(c.ACTION_DESCRIBE, request_id, index), *library_buttons(request_id)],
    ]


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
    return {
        c.ACTION_UPSCALE: f"U{number}",
        c.ACTION_VARY: f"V{number}",
        c.ACTION_REROLL: "🔄",
        c.ACTION_VARY_STRONG: "Vary (strong)",
        c.ACTION_VARY_SUBTLE: "Vary (subtle)",
        c.ACTION_UPSCALE_2X: "Upscale 2×",
        c.ACTION_INFO: "ⓘ Info",
        c.ACTION_DELETE: "🗑 Delete",
        c.ACTION_HISTORY_NEWER: "◀ Newer",
        c.ACTION_HISTORY_OLDER: "Older ▶",
        c.ACTION_DESCRIBE: "Describe",
        c.ACTION_SUGGESTION: f"Imagine {number}",
    }[button.action]
