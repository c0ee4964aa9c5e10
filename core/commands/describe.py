"""/describe: what the image is (an upload, or an image of a finished result), checked before anything is charged,
and what comes back (four prompt suggestions, each imagined by its button through the normal /imagine path).

An upload is checked from its header like an img2img upload (core.commands.uploads: a picture, PNG, JPEG or
WebP, not too large); an image of a result must still be shown (one the image check withheld can't be picked).
"""

from __future__ import annotations

from core import constants as c
from core.commands.buttons import Button
from core.errors import InvalidRequest
from core.models.describe import SUGGESTIONS
from core.models.result import EventKind, ResultEvent

__all__ = ["SUGGESTIONS", "described_text", "suggestion", "suggestion_buttons"]


def suggestion(result: ResultEvent, index: int) -> str:
    """Suggestion `index` of a finished /describe, for its button."""
    if result.kind is not EventKind.DESCRIBED or not result.suggestions:
        raise InvalidRequest(
            "button", "That /describe has no suggestions to imagine; please describe it again."
        )
    if not 0 <= index < len(result.suggestions):
        raise InvalidRequest(
            "button", f"That /describe made {len(result.suggestions)} suggestions, not {index + 1}."
        )
    return result.suggestions[index]


def described_text(result: ResultEvent) -> str:
    """The suggestions, numbered, as the reply's text."""
    lines = ["Prompts for this image — press a number to imagine it:"]
    lines += [f"{number}. {text}" for number, text in enumerate(result.suggestions, start=1)]
    if result.message:
        lines.append(result.message)
    return "\n".join(lines)


def suggestion_buttons(result: ResultEvent) -> list[list[Button]]:
    return [[Button(c.ACTION_SUGGESTION, result.request_id, i) for i in range(len(result.suggestions))]]
