"""The steps some presses take before they queue anything, platform-neutral: the region picker, and the
questions a press asks (a prompt under Remix or for a region, a custom zoom factor).

Core decides which step comes (service.press returns a `Picker` or an `Ask`); a front end draws it (Telegram:
an inline keyboard, a ForceReply prompt; Discord: an ephemeral view, a modal) and, once answered, presses
`Ask.button` again with an `Answer`. Every state a step needs is in the button id, so a step started before a
restart is finished after it.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from core import constants as c
from core.commands.buttons import PREFIX, TEMPLATE, Button, decode_button, region_buttons
from core.errors import InvalidRequest

REF_RE = re.compile(rf"\(ref ({PREFIX}:{TEMPLATE})\)")
ANSWER_MAX_CHARS = 2000


@dataclass(frozen=True)
class Answer:
    """What the user answered an `Ask` with: the edited prompt and/or the zoom factor, as typed."""

    prompt: str | None = None
    factor: str | None = None

    def key(self) -> str:
        """A short digest, so the same button answered differently is a different press."""
        digest = hashlib.sha256(f"{self.prompt}\x00{self.factor}".encode()).hexdigest()
        return digest[:12]


@dataclass(frozen=True)
class Ask:
    """Ask the presser before going ahead, then press `button` again with the answer."""

    button: Button
    prompt: str | None  # the prompt to start from (prefill), when a prompt is asked for
    wants_prompt: bool
    wants_factor: bool

    @property
    def title(self) -> str:
        if self.wants_factor:
            return "Custom Zoom"
        if self.button.action in (c.ACTION_REGION_SUBMIT, c.ACTION_REGION_PROMPT):
            return "Vary (Region)"
        return "Remix"

    @property
    def question(self) -> str:
        """The words of a text prompt for it (Telegram's ForceReply), with the state it carries."""
        if self.wants_factor:
            text = "Reply to this message with the zoom-out factor, from 1.1 to 2.0 (for example 1.3)."
        elif self.button.action in (c.ACTION_REGION_SUBMIT, c.ACTION_REGION_PROMPT):
            text = "Reply to this message with the prompt for the selected region."
        else:
            text = "Remix: reply to this message with the prompt to use (edit the one below)."
        if self.wants_prompt and self.prompt:
            text += f"\n\nPrompt: {self.prompt}"
        return f"{text}\n{reference(self.button)}"


def reference(button: Button) -> str:
    """The line a text prompt carries so its answer finds the press again (after a restart, too)."""
    return f"(ref {button.encode()})"


def referenced_button(text: str) -> Button | None:
    """The button a prompt's text refers to (`reference`), or None when it carries none."""
    match = REF_RE.search(text or "")
    if match is None:
        return None
    try:
        return decode_button(match.group(1))
    except InvalidRequest:
        return None


def answer_for(ask_button: Button, text: str) -> Answer:
    """A typed answer to the question `ask_button` asked: a factor for Custom Zoom, else a prompt."""
    text = text.strip()[:ANSWER_MAX_CHARS]
    if ask_button.action == c.ACTION_ZOOM_CUSTOM:
        return Answer(factor=text)
    return Answer(prompt=text)


@dataclass(frozen=True)
class Picker:
    """The region picker for image `index`: its rows (core button ids) and what it says."""

    request_id: str
    index: int
    cells: int

    @property
    def rows(self) -> list[list[Button]]:
        return region_buttons(self.request_id, self.index, self.cells)

    @property
    def text(self) -> str:
        chosen = bin(self.cells).count("1")
        state = f"{chosen} of 9 squares selected" if chosen else "nothing selected yet"
        return (
            f"Vary (Region) of image {self.index + 1}: tap the squares to repaint (🟥 = repaint), "
            f"then Repaint. ({state})"
        )
