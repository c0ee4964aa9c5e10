"""Blocklist: whole words and phrases on normalised text; short terms never fire inside innocent words."""

from __future__ import annotations

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from moderation.blocklist import Blocklist, Match, Term
from moderation.default_terms import default_blocklist

SHORT_TERMS = Blocklist(
    [
        Term("ass", "profanity"),
        Term("butt", "profanity"),
        Term("tit", "profanity"),
        Term("shit", "profanity"),
        Term("cock", "profanity"),
        Term("cunt", "profanity"),
        Term("cum", "sexual"),
        Term("sex", "sexual"),
        Term("anal", "sexual"),
        Term("rape", "sexual_violence"),
        Term("rapist", "sexual_violence"),
        Term("bot", "test"),
        Term("kill", "test"),
        Term("child porn", "sexual_minors"),
        Term("self harm", "self_harm"),
    ],
    exceptions=["cum laude"],
)


@pytest.mark.parametrize(
    "innocent",
    [
        "Scunthorpe",
        "a cocktail",
        "an assessment",
        "cumulative",
        "the therapist",
        "grapes",
        "Sussex",
        "analysis",
        "shiitake",
        "class",
        "title",
        "button",
        "annals of history",
        "a boot",
        "assassin",
        "passion",
        "scrapes",
        "skill",
        "document",
        "titanic",
        "as",
        "but",
        "magna cum laude",
    ],
)
def test_short_terms_do_not_fire_inside_innocent_words(innocent: str) -> None:
    assert SHORT_TERMS.match(innocent) == []


@pytest.mark.parametrize(
    ("text", "term"),
    [
        ("ass", "ass"),
        ("ASSES", "ass"),
        ("a-s-s", "ass"),
        ("s3x", "sex"),
        ("sexxx", "sex"),
        ("seeeex", "sex"),
        ("k1ll", "kill"),  # "1" reads as "i"
        ("ki11", "kill"),  # and as "l"
        ("k!ll", "kill"),
        ("cum", "cum"),
        ("rapes", "rape"),
        ("the rapist", "rapist"),
        ("child porn", "child porn"),
        ("childporn", "child porn"),
        ("child_porn", "child porn"),
        ("self-harm", "self harm"),
        ("selfharm", "self harm"),
        ("self   harm", "self harm"),
    ],
)
def test_terms_match_as_whole_words_with_flexible_spelling(text: str, term: str) -> None:
    assert term in [hit.term for hit in SHORT_TERMS.match(text)]


def test_a_letter_repeated_once_is_a_different_word() -> None:
    # Stretching needs two extra letters: "boot" is not "bot", "annal" is not "anal".
    assert SHORT_TERMS.match("boot annal") == []
    assert SHORT_TERMS.match("booot") == [Match("bot", "test")]


def test_matches_carry_the_category_and_the_normalised_term_once() -> None:
    hits = SHORT_TERMS.match("ASS, a$$ and cum laude but cum")
    assert hits == [Match("ass", "profanity"), Match("cum", "sexual")]


def test_exceptions_remove_only_the_exact_phrase() -> None:
    assert SHORT_TERMS.match("summa cum laude") == []
    assert SHORT_TERMS.match("cum laude and cum") == [Match("cum", "sexual")]


def test_terms_are_normalised_like_text() -> None:
    blocklist = Blocklist([Term("Ｂａｄ-Wörd", "custom")])
    assert blocklist.terms("custom") == ("bad word",)
    assert blocklist.match("bad word") == [Match("bad word", "custom")]
    assert blocklist.match("badword") == [Match("bad word", "custom")]
    assert len(blocklist) == 1


def test_an_empty_term_is_rejected() -> None:
    with pytest.raises(ValueError, match="empty"):
        Blocklist([Term("...", "custom")])


@given(
    word=st.sampled_from(["sex", "anal", "rape", "shit"]),
    positions=st.lists(st.integers(min_value=0, max_value=4), max_size=3),
)
def test_zero_width_characters_anywhere_do_not_hide_a_term(word: str, positions: list[int]) -> None:
    chars = list(word)
    for position in sorted(positions, reverse=True):
        chars.insert(min(position, len(chars)), "\u200b")
    assert word in [hit.term for hit in SHORT_TERMS.match("a " + "".join(chars) + " scene")]


@pytest.mark.parametrize(
    ("text", "terms"),
    [
        ("analsex", ["anal", "sex"]),
        ("sexanal", ["anal", "sex"]),
        ("a s s b u t t", ["ass", "butt"]),  # a spelled run that normalize joins into one word
        ("childporn", ["child porn"]),  # a phrase written as one word is one term, as before
        ("k1llsexes", ["sex", "kill"]),
        ("rapeandkill", ["rape", "kill"]),  # "and" may sit between joined terms
    ],
)
def test_terms_written_as_one_word_are_read_apart(text: str, terms: list[str]) -> None:
    assert sorted(hit.term for hit in SHORT_TERMS.match(text)) == sorted(terms)


@pytest.mark.parametrize(
    "innocent", ["assassin", "cocktail", "titbits", "assassinate", "shitakes", "analsexy", "botanical"]
)
def test_a_word_is_read_apart_only_when_it_is_made_of_terms_alone(innocent: str) -> None:
    assert SHORT_TERMS.match(innocent) == []


def test_a_long_prompt_of_joined_terms_is_checked_quickly() -> None:
    # Every word is made of terms, the worst case for reading joined words apart; it must stay cheap.
    word = "sexanalbuttasscumtitshitrapebot"
    text = " ".join([word + "x"] * 48)  # about 1,500 characters, the longest prompt allowed by default
    started = time.process_time()
    assert SHORT_TERMS.match(text) == []  # no word is made of terms alone: each ends in "x"
    assert time.process_time() - started < 0.25


DEFAULT = default_blocklist()


@pytest.mark.parametrize(
    ("term", "category"),
    [(term, category) for category in DEFAULT.categories for term in DEFAULT.terms(category)],
)
def test_every_default_term_is_still_found_in_every_category_it_belongs_to(term: str, category: str) -> None:
    """A clean text costs one scan of all terms together; a text with a term is still read category by
    category, so a term listed in two categories ("underwear": suggestive and clothing) is found in both.
    (Which term is named may be a longer one of the same category: "selfharm" is read as "self harm".)"""
    for text in (f"a portrait, {term}, at dusk", f"{term}s in the rain", f"the {term}"):
        assert category in {match.category for match in DEFAULT.match(text)}, text


def test_a_clean_prompt_matches_nothing() -> None:
    assert DEFAULT.match("a lighthouse at dusk, study 7, cinematic lighting, highly detailed, 8k") == []
