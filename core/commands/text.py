"""The characters a command may hold, and whether its prompt says anything visible.

A command's text ends up in captions, in PNG text metadata and in Redis, so some characters are refused with a
message that names them (by code point) and says what to do:

- a lone UTF-16 surrogate (U+D800–U+DFFF), left by a broken copy and paste: it can't be encoded at all;
- NUL and the other control characters (C0, DEL, C1), except tab, line feed and carriage return, which are
  ordinary whitespace;
- the explicit text-direction controls: embeddings and overrides (U+202A–U+202E) and isolates
  (U+2066–U+2069). They reorder what follows them, so a caption could read differently from what was drawn
  (the "Trojan Source" trick). The implicit marks (U+200E, U+200F, U+061C) stay: right-to-left writers need
  them, and they reorder nothing beyond their neighbours.

Zero-width joiners and non-joiners also stay (emoji sequences and Persian need them), but a prompt made of
nothing else is empty: `check_prompt_text` refuses a prompt with no visible character once zero-width spaces,
joiners, byte-order marks, other format characters, combining marks on nothing and blank-looking letters
(Hangul fillers, the braille blank) are left out.
"""

from __future__ import annotations

import unicodedata
from typing import Final

from core.errors import InvalidRequest
from core.settings import LimitsSettings

WHITESPACE_CONTROLS: Final = frozenset("\t\n\r")
DIRECTION_CONTROLS: Final = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
INVISIBLE_CATEGORIES: Final = frozenset({"Cc", "Cf", "Cs", "Zs", "Zl", "Zp", "Mn", "Me"})
BLANK_LETTERS: Final = frozenset("\u115f\u1160\u3164\uffa0\u2800\u17b4\u17b5")
EXAMPLE: Final = "a lighthouse at dusk --ar 16:9"


def check_characters(text: str) -> None:
    """Raise InvalidRequest("prompt", ...) naming the first character a command may not hold."""
    if text.isprintable():  # the usual case: nothing but letters, marks, symbols and plain spaces
        return
    for char in text:
        problem = _problem(char)
        if problem is not None:
            raise InvalidRequest("prompt", f"{problem} Please remove it and send the command again.")


def _problem(char: str) -> str | None:
    code = ord(char)
    label = f"U+{code:04X}"
    if 0xD800 <= code <= 0xDFFF:
        return (
            f"Your command contains a broken character ({label}, half of a character pair), usually left by "
            "a copy and paste that went wrong: retype that part."
        )
    if char == "\0":
        return f"Your command contains a NUL character ({label}), which can't go into a caption or an image."
    if unicodedata.category(char) == "Cc" and char not in WHITESPACE_CONTROLS:
        return f"Your command contains an invisible control character ({label})."
    if char in DIRECTION_CONTROLS:
        name = unicodedata.name(char).lower()
        return (
            f"Your command contains a text-direction control ({label}, {name}), which can make a caption "
            "read differently from what was drawn."
        )
    return None


def is_visible(char: str) -> bool:
    return unicodedata.category(char) not in INVISIBLE_CATEGORIES and char not in BLANK_LETTERS


def check_prompt_text(prompt: str, limits: LimitsSettings) -> None:
    """The prompt (flags taken out, whitespace normalised) says something, within the length limit."""
    if not prompt:
        raise InvalidRequest("prompt", f"Please describe the image before the flags, for example: {EXAMPLE}")
    if not any(map(is_visible, prompt)):
        raise InvalidRequest(
            "prompt",
            "The prompt is empty once invisible characters (zero-width spaces, joiners, byte-order marks) "
            f"are left out. Please describe the image in words, for example: {EXAMPLE}",
        )
    if len(prompt) > limits.max_prompt_chars:
        raise InvalidRequest(
            "prompt",
            f"Your prompt is {len(prompt)} characters long; the limit is {limits.max_prompt_chars}. "
            "Please shorten it.",
        )
