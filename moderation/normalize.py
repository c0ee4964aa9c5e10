"""Text normalisation for matching: what a prompt says once the usual disguises are taken off.

`normalize` folds a prompt into lowercase words of letters and digits separated by single spaces:

- Unicode NFKC (fullwidth, circled and mathematical letters become plain ones), then casefold;
- format and control characters (zero-width spaces and joiners, soft hyphens, direction marks) are removed,
  so "nu\u200bde" reads "nude"; combining marks (diacritics, "zalgo" stacks) are stripped;
- Cyrillic and Greek look-alikes become the Latin letters they imitate ("рогn" → "porn");
- leetspeak is folded inside words that contain a letter ("p0rn", "$ex", "n00d3"); numbers on their own
  ("13 year old", "1024") are left alone. "1", "!" and "|" may stand for "i" or "l": they become "1",
  which the blocklist reads as either letter (see blocklist.py);
- punctuation and underscores separate words, and a run of three or more single characters is joined
  ("n.s.f.w", "n s f w", "n-s-f-w", "n_s_f_w" → "nsfw").

`readings` adds other ways to read spelled-out letters: with a leading "a"/"i" kept as a word, and with a run
cut where its spacing changes ("n a k e d   w o m a n" → "naked woman", "n.a.k.e.d c.h.i.l.d" → "naked child").

Runs of one letter inside a word are cut to four ("nuuuuuuude" → "nuuuude"); the blocklist accepts a letter
repeated two or more extra times, which catches stretching without making "annals" read "anal".
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final

# Only for matching; the text shown to users and stored with the image is never changed.
AMBIGUOUS: Final = "1"  # "1", "!" or "|" inside a word: "i" or "l"

_HOMOGLYPHS: Final = {
    # Cyrillic (lowercase, after casefold)
    "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o", "п": "n", "р": "p",
    "с": "c", "т": "t", "у": "y", "х": "x", "ѕ": "s", "і": "i", "ї": "i", "ј": "j", "ԁ": "d", "һ": "h",
    "ԛ": "q", "ԝ": "w", "ь": "b", "г": "r", "ѡ": "w", "ү": "y", "ɡ": "g",
    # Greek
    "α": "a", "β": "b", "γ": "y", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p",
    "τ": "t", "υ": "u", "χ": "x", "ω": "w", "μ": "u", "ϲ": "c", "ϳ": "j",
    # Latin letters that NFD does not decompose
    "ø": "o", "ł": "l", "đ": "d", "ħ": "h", "ı": "i", "ŧ": "t", "æ": "ae", "œ": "oe", "ð": "d", "ƅ": "b",
}  # fmt: skip
# Regional indicator symbols (🇳 🇸 🇫 🇼) read as the letters they show.
_HOMOGLYPHS.update({chr(0x1F1E6 + i): chr(ord("a") + i) for i in range(26)})
_HOMOGLYPH_TABLE: Final = str.maketrans(_HOMOGLYPHS)

_LEET_DIGITS: Final = {"0": "o", "1": AMBIGUOUS, "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "9": "g"}
_LEET_SYMBOLS: Final = {"@": "a", "$": "s", "!": AMBIGUOUS, "|": AMBIGUOUS, "€": "e", "¢": "c"}
_LEET: Final = str.maketrans(_LEET_DIGITS | _LEET_SYMBOLS)
_SYMBOLS: Final = "".join(re.escape(symbol) for symbol in _LEET_SYMBOLS)

# A word: letters and digits (no underscore), with leet symbols allowed inside or in front.
_TOKEN: Final = re.compile(rf"(?:[^\W_]|[{_SYMBOLS}])+")
_TRAILING_SYMBOLS: Final = re.compile(rf"[{_SYMBOLS}]+$")
_ALL_SYMBOLS: Final = re.compile(rf"[{_SYMBOLS}]")
_SINGLE: Final = re.compile(rf"[a-z0-9{_SYMBOLS}]")
MIN_SPELLED_RUN: Final = 3  # "a b" stays two words; "s e x" becomes one
ONE_LETTER_WORDS: Final = frozenset("ai")
MAX_RUN: Final = 4  # "nuuuuuuude" → "nuuuude": still reads as stretched, and keeps matching linear
_LONG_RUN: Final = re.compile(rf"(.)\1{{{MAX_RUN},}}")


def normalize(text: str, *, leet: bool = True) -> str:
    """The matching form of `text`; `leet=False` keeps digits as digits (for ages such as "13yo")."""
    return _render(_join_spelled_runs(_tokens(_fold_characters(text))), leet)


def readings(text: str) -> tuple[str, ...]:
    """`normalize(text)` first, then any other way to read spelled-out letters.

    "a l.o.l.i" reads "aloli" as one run, but "a" is usually the article: the second reading is "a loli".
    A run that starts with "a" or "i" and has four or more letters gets that second reading. A run whose
    letters are spaced one way and whose words another ("n a k e d   w o m a n") is also read cut at the
    wider (or different) gaps: "naked woman".
    """
    tokens, gaps = _spaced_tokens(_fold_characters(text))
    first = _join_spelled_runs(tokens)
    found = [_render(first, True)]
    for joined in (
        _join_spelled_runs(tokens, keep_leading_word=True),
        _join_spelled_runs(tokens, gaps=gaps),
    ):
        reading = found[0] if joined == first else _render(joined, True)
        if reading not in found:
            found.append(reading)
    return tuple(found)


def _render(tokens: list[str], leet: bool) -> str:
    fold = _fold_leet if leet else _strip_symbols
    return " ".join(folded for folded in map(fold, tokens) if folded)


def _strip_symbols(token: str) -> str:
    return _ALL_SYMBOLS.sub("", token)


def _fold_characters(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold()
    kept = []
    for char in unicodedata.normalize("NFD", text):
        category = unicodedata.category(char)
        if category in ("Mn", "Me", "Cf"):
            continue  # diacritics, enclosing marks, zero-width and direction characters
        if category == "Cc":
            if char.isspace():
                kept.append(" ")
            continue
        kept.append(char)
    return unicodedata.normalize("NFC", "".join(kept)).translate(_HOMOGLYPH_TABLE)


def _tokens(text: str) -> list[str]:
    return _spaced_tokens(text)[0]


def _spaced_tokens(text: str) -> tuple[list[str], list[str]]:
    """The words of `text`, and before each one what separated it from the word before ("" for the first)."""
    tokens: list[str] = []
    gaps: list[str] = []
    end = 0
    for match in _TOKEN.finditer(text):
        token = _TRAILING_SYMBOLS.sub("", match.group())  # "porn!" ends a word; "$ex" and "n!pple" do not
        if token and not any(char.isalpha() for char in token):
            token = _ALL_SYMBOLS.sub("", token)  # "$5" is a price, not a word
        if token:
            gaps.append(text[end : match.start()] if tokens else "")
            tokens.append(token)
            end = match.end()
    return tokens, gaps


def _join_spelled_runs(
    tokens: list[str], keep_leading_word: bool = False, gaps: list[str] | None = None
) -> list[str]:
    """Join runs of single characters that hold a letter: ["n", "s", "f", "w"] → ["nsfw"].

    With `gaps` (from `_spaced_tokens`), a run is also cut wherever its gap differs from the one most of its
    letters are separated by: "n a k e d   w o m a n" is two runs.
    """
    joined: list[str] = []
    run: list[int] = []

    def flush() -> None:
        for piece in _cut_at_gaps(run, gaps) if gaps is not None else [run]:
            letters = [tokens[index] for index in piece]
            if keep_leading_word and len(letters) > MIN_SPELLED_RUN and letters[0] in ONE_LETTER_WORDS:
                joined.append(letters.pop(0))
            if len(letters) >= MIN_SPELLED_RUN and any(char.isalpha() for char in letters):
                joined.append("".join(letters))
            else:
                joined.extend(letters)
        run.clear()

    for index, token in enumerate(tokens):
        if len(token) == 1 and _SINGLE.fullmatch(token):
            run.append(index)
        else:
            flush()
            joined.append(token)
    flush()
    return joined


def _cut_at_gaps(run: list[int], gaps: list[str]) -> list[list[int]]:
    inner = [gaps[index] for index in run[1:]]
    if len(set(inner)) < 2:
        return [run]
    usual = max(set(inner), key=inner.count)
    pieces = [[run[0]]]
    for index in run[1:]:
        if gaps[index] != usual:
            pieces.append([])
        pieces[-1].append(index)
    return pieces


def _fold_leet(token: str) -> str:
    if not any(char.isalpha() for char in token):
        return token  # a number stays a number
    return _LONG_RUN.sub(r"\1" * MAX_RUN, token.translate(_LEET))
