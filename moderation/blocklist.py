"""Whole-word matching of blocked terms on normalised text.

Terms and text go through the same `normalize`, then each term must stand as whole words: "sex" matches
"sex" and "sexes" but not "Sussex", "anal" not "analysis", "rape" not "grapes". Matching is forgiving in
three ways and strict in everything else:

- the words of a phrase may be joined or separated ("child porn", "childporn", "child-porn");
- an "i" or "l" of a term also matches the ambiguous "1" that normalize leaves for "1", "!" and "|";
- a letter of a term may be stretched by two or more extra copies ("nuuude", "sexxx"), but not by exactly one,
  so "annals" does not read "anal" and "boot" does not read "bot";
- a final "s" or "es" is accepted (plurals);
- terms written as one word ("nakedchild", or "n a k e d c h i l d", which normalize joins into one run) are
  read apart, but only when the whole word is two to four terms of the list, optionally with "a", "an", "and",
  "the", "of" or "with" between them. A word that merely contains a term ("cocktail", "Scunthorpe",
  "therapist", "brainchild") is never split: no word of a 100,000-word English dictionary is two such terms.

`exceptions` are phrases removed before matching, for the few innocent phrases that contain a blocked word
("cum laude").
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import groupby
from typing import Final

from moderation.normalize import AMBIGUOUS, normalize, readings

JOIN_FILLERS: Final = ("a", "an", "and", "the", "of", "with")  # may sit between joined terms
MAX_JOINED_TERMS: Final = 4
MAX_JOINED_CHARS: Final = 64  # a longer word is not read as joined terms (keeps the match linear)


@dataclass(frozen=True)
class Term:
    text: str
    category: str


@dataclass(frozen=True)
class Match:
    term: str  # the normalised term that matched, never the user's spelling
    category: str


def _letter_pattern(char: str) -> str:
    if char in "il":
        return f"[{char}{AMBIGUOUS}]"
    if char == AMBIGUOUS:
        return f"[il{AMBIGUOUS}]"
    return re.escape(char)


def term_pattern(normalized_term: str) -> str:
    """The regex body for one normalised term (no boundaries)."""
    words = []
    for word in normalized_term.split(" "):
        parts = []
        for char, run in groupby(word):
            count = len(list(run))
            letter = _letter_pattern(char)
            parts.append(f"{letter}{{{count}}}(?:{letter}{{2,}})?")
        words.append("".join(parts))
    return " ?".join(words)


class Blocklist:
    """An immutable set of categorised terms, compiled once; `match` is safe to call from any thread."""

    def __init__(self, terms: Iterable[Term], exceptions: Iterable[str] = ()) -> None:
        by_category: dict[str, dict[str, None]] = {}
        for term in terms:
            normalized = normalize(term.text)
            if not normalized:
                raise ValueError(f"blocklist term {term.text!r} is empty once normalised")
            by_category.setdefault(term.category, {})[normalized] = None
        self._terms = {category: tuple(terms) for category, terms in by_category.items()}
        self._patterns = {category: _compile(terms) for category, terms in self._terms.items()}
        self._any = _compile_any(term for terms in self._terms.values() for term in terms)
        self._joined = JoinedTerms(term for terms in self._terms.values() for term in terms)
        exception_terms = sorted({normalize(text) for text in exceptions} - {""}, key=len, reverse=True)
        self._exceptions = _compile_plain(exception_terms) if exception_terms else None

    @property
    def categories(self) -> frozenset[str]:
        return frozenset(self._terms)

    def terms(self, category: str) -> tuple[str, ...]:
        return self._terms.get(category, ())

    def __len__(self) -> int:
        return sum(len(terms) for terms in self._terms.values())

    def match(self, text: str) -> list[Match]:
        """Every blocked term in `text` (raw user text), in category order, each term once."""
        return self.match_normalized(*readings(text))

    def match_normalized(self, *normalized: str) -> list[Match]:
        """Like `match` for text already passed through `normalize` or `readings` (saves doing it twice)."""
        found: dict[Match, None] = {}
        for reading in (*normalized, *self._split_joined(normalized)):
            text = reading if self._exceptions is None else self._exceptions.sub(" ", reading)
            if self._any.search(text) is None:  # most prompts: one scan instead of one per category
                continue
            for category, (pattern, names) in self._patterns.items():
                for hit in pattern.finditer(text):
                    assert hit.lastgroup is not None
                    found[Match(names[hit.lastgroup], category)] = None
        return list(found)

    def _split_joined(self, readings: tuple[str, ...]) -> list[str]:
        """Readings in which words made of joined terms are written apart ("nakedchild" → "naked child")."""
        split = []
        for reading in readings:
            words = reading.split(" ")
            apart = [self._joined.apart(word) for word in words]
            if apart != words:
                split.append(" ".join(apart))
        return split


class JoinedTerms:
    """Reads a word written as two to MAX_JOINED_TERMS terms apart: "nakedchild" → "naked child".

    A breadth-first walk over the word's positions: from each position reached, every term that matches there
    (with its plural) reaches a further one, and a filler word may follow a term. Each term is tried only where
    the word has its first letter, so a word costs at most (length × terms sharing a letter) short matches.
    """

    def __init__(self, terms: Iterable[str]) -> None:
        self._by_letter: dict[str, list[re.Pattern[str]]] = {}
        shortest = MAX_JOINED_CHARS
        for term in sorted(set(terms), key=len, reverse=True):
            pattern = re.compile(term_pattern(term))
            shortest = min(shortest, len(term.replace(" ", "")))
            first = term[0]
            letters = (
                {first, AMBIGUOUS} if first in "il" else {first, "i", "l"} if first == AMBIGUOUS else {first}
            )
            for letter in letters:
                self._by_letter.setdefault(letter, []).append(pattern)
        self._min_chars = 2 * shortest

    def apart(self, word: str) -> str:
        """`word`, or its terms separated by spaces when it is made of them (and fillers) alone."""
        if not self._min_chars <= len(word) <= MAX_JOINED_CHARS:
            return word
        reached: dict[int, tuple[str, ...]] = {0: ()}
        frontier = [0]
        for _ in range(MAX_JOINED_TERMS):
            following = []
            for start in frontier:
                parts = reached[start]
                for begin in self._term_starts(word, start, parts):
                    for end in self._term_ends(word, begin):
                        if end not in reached:
                            reached[end] = (*parts, word[begin:end])
                            following.append(end)
            frontier = following
        parts = reached.get(len(word), ())
        return " ".join(parts) if len(parts) >= 2 else word

    @staticmethod
    def _term_starts(word: str, start: int, parts: tuple[str, ...]) -> list[int]:
        if not parts:
            return [start]
        return [start] + [start + len(filler) for filler in JOIN_FILLERS if word.startswith(filler, start)]

    def _term_ends(self, word: str, begin: int) -> set[int]:
        ends = set()
        for pattern in self._by_letter.get(word[begin : begin + 1], ()):
            hit = pattern.match(word, begin)
            if hit is not None:
                end = hit.end()
                ends.add(end)
                if word.startswith("s", end):
                    ends.add(end + 1)
                elif word.startswith("es", end):
                    ends.add(end + 2)
        return ends


def _compile(terms: tuple[str, ...]) -> tuple[re.Pattern[str], dict[str, str]]:
    # Longest first, so a phrase wins over a word it starts with; named groups tell which term matched.
    ordered = sorted(terms, key=len, reverse=True)
    names = {f"t{index}": term for index, term in enumerate(ordered)}
    body = "|".join(f"(?P<{name}>{term_pattern(term)})" for name, term in names.items())
    return re.compile(rf"(?<!\w)(?:{body})(?:e?s)?(?!\w)"), names


def _compile_any(terms: Iterable[str]) -> re.Pattern[str]:
    """Every category's terms in one pattern without names: where it finds nothing, no category's pattern can
    (each is the same boundaries around a subset of these alternatives), so a clean text costs one scan."""
    body = "|".join(f"(?:{term_pattern(term)})" for term in sorted(set(terms), key=len, reverse=True))
    return re.compile(rf"(?<!\w)(?:{body})(?:e?s)?(?!\w)")


def _compile_plain(phrases: list[str]) -> re.Pattern[str]:
    body = "|".join(re.escape(phrase) for phrase in phrases)
    return re.compile(rf"(?<!\w)(?:{body})(?!\w)")
