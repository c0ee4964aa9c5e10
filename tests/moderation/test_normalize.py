"""normalize: the disguises people use are taken off, and ordinary text stays readable."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from moderation.normalize import normalize, readings


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("NSFW Art", "nsfw art"),
        ("n.s.f.w", "nsfw"),
        ("n s f w", "nsfw"),
        ("n-s-f-w", "nsfw"),
        ("n_s_f_w", "nsfw"),
        ("N . S . F . W", "nsfw"),
        ("nu\u200bde", "nude"),  # zero-width space
        ("nu\u200dd\u00ade", "nude"),  # zero-width joiner, soft hyphen
        ("\u202enude\u202c", "nude"),  # direction overrides
        ("ｎｕｄｅ", "nude"),  # fullwidth
        ("𝐧𝐮𝐝𝐞", "nude"),  # mathematical bold
        ("ⓝⓤⓓⓔ", "nude"),  # circled
        ("🇳🇸🇫🇼", "nsfw"),  # regional indicators
        ("nüdé", "nude"),
        ("n̸u̸d̸e̸", "nude"),  # combining overlays
        ("рогn", "porn"),  # Cyrillic р, о, г
        ("nυdе", "nude"),  # Greek upsilon, Cyrillic е
        ("ѕех", "sex"),  # all Cyrillic
        ("p0rn", "porn"),
        ("$ex", "sex"),
        ("5ex", "sex"),
        ("@n@l", "anal"),
        ("n00d3", "noode"),
        ("s 3 x", "sex"),
        ("porn!", "porn"),  # a trailing "!" ends the word
        ("n!pple", "n1pple"),  # "!" inside a word is the ambiguous i/l
        ("Straße", "strasse"),
    ],
)
def test_disguises_are_removed(text: str, expected: str) -> None:
    assert normalize(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a lighthouse at dusk, 4k", "a lighthouse at dusk ak"),
        ("the year 1999", "the year 1999"),  # numbers alone stay numbers
        ("price: $5", "price 5"),
        ("a b", "a b"),  # two single letters are not joined
        ("U.S. navy ship", "u s navy ship"),
        ("therapist's office", "therapist s office"),
        ("東京の夜景", "東京の夜景"),
        ("  many   spaces\tand\nlines ", "many spaces and lines"),
    ],
)
def test_ordinary_text_stays_readable(text: str, expected: str) -> None:
    assert normalize(text) == expected


def test_leet_can_be_turned_off_for_ages() -> None:
    assert normalize("a 13yo, 12-year-old", leet=False) == "a 13yo 12 year old"
    assert normalize("a 13yo") == "a 1eyo"


@given(st.text(max_size=60))
def test_normalize_is_idempotent(text: str) -> None:
    once = normalize(text)
    assert normalize(once) == once


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz ", max_size=40))
def test_plain_lowercase_words_are_unchanged_but_for_spacing(text: str) -> None:
    words = text.split()
    has_spelled_run = any(
        all(len(word) == 1 for word in words[i : i + 3]) and len(words[i : i + 3]) == 3
        for i in range(len(words))
    )
    if not has_spelled_run:
        assert normalize(text) == " ".join(words)


def test_spelled_out_letters_after_an_article_have_a_second_reading() -> None:
    assert readings("a l.o.l.i") == ("aloli", "a loli")
    assert readings("i n s f w") == ("insfw", "i nsfw")
    assert readings("a n a l") == ("anal", "a nal")  # both kept: the first reading still finds "anal"
    assert readings("a cat on a mat") == ("a cat on a mat",)


def test_long_runs_of_one_letter_are_cut_to_four_but_numbers_are_not() -> None:
    assert normalize("nuuuuuuuuude 1000000 zzzz") == "nuuuude 1000000 zzzz"
    assert normalize("ch" + "1" * 50 + "d") == "ch1111d"


def test_a_spelled_run_is_also_read_cut_where_its_spacing_changes() -> None:
    assert readings("n a k e d   w o m a n") == ("nakedwoman", "naked woman")
    assert readings("n.a.k.e.d c.h.i.l.d photo") == ("nakedchild photo", "naked child photo")
    assert readings("N . S . F . W") == ("nsfw",)  # one kind of gap throughout: one word
    assert readings("n a k  e d") == ("naked", "nak e d")  # the joined reading is always kept
