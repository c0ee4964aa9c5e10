"""The default terms every public bot refuses, by category, and the minor-safety rule's vocabulary.

Refusing categories (a prompt with any of these terms is refused):

    sexual_minors     terms that only describe sexual content involving children; never allowed anywhere
    sexual            explicit sexual terms; a community may allow them in age-restricted channels
    sexual_violence   rape and sexual assault
    violence_graphic  dismemberment, mutilation and other gore
    hate              a short list of unambiguous slurs (stored rot13, see below)
    self_harm         suicide and self-injury as acts, not as topics ("suicide prevention" passes)

Signal categories, never refused on their own, that feed the minor-safety rule in prompt_check.py:

    minor             children and young teens ("child", "toddler", "young girl", "loli")
    suggestive        not explicit, but sexualising ("sexy", "lingerie", "seductive")
    clothing          what a negative prompt strips away ("clothes", "clothing")

The rule: a minor term (or an age under 18, see `mentions_minor_age`) together with a sexual, suggestive or
sexual-violence term refuses the prompt as "sexual_minors", and so does a minor term in the prompt with a
clothing term in the negative prompt. No community setting or NSFW channel changes that.

Choices, to keep false positives rare: "girl" and "boy" alone are not minor terms (image prompts use them for
adults, e.g. "1girl"); "young girl", "little boy" are. Words with common innocent senses are left out
("cock", "pussy", "dick", "ass", "gore", "coon", "chink"); the image check is the second line for those.
The list is English only.

The slurs are stored rot13 so that reading or grepping this file does not put them in front of anyone; rot13 is
not secrecy, and `blocklist_terms()` decodes them.
"""

from __future__ import annotations

import codecs
import re
from typing import Final

from moderation.blocklist import Blocklist, Term
from moderation.normalize import normalize

SEXUAL_MINORS: Final = "sexual_minors"
SEXUAL: Final = "sexual"
SEXUAL_VIOLENCE: Final = "sexual_violence"
VIOLENCE_GRAPHIC: Final = "violence_graphic"
HATE: Final = "hate"
SELF_HARM: Final = "self_harm"
MINOR: Final = "minor"
SUGGESTIVE: Final = "suggestive"
CLOTHING: Final = "clothing"

REFUSING_CATEGORIES: Final = frozenset(
    {SEXUAL_MINORS, SEXUAL, SEXUAL_VIOLENCE, VIOLENCE_GRAPHIC, HATE, SELF_HARM}
)
SIGNAL_CATEGORIES: Final = frozenset({MINOR, SUGGESTIVE, CLOTHING})
# With a minor term, these make a prompt "sexual_minors".
SEXUALISING_CATEGORIES: Final = frozenset({SEXUAL, SEXUAL_VIOLENCE, SUGGESTIVE})
NEVER_ALLOWED: Final = frozenset({SEXUAL_MINORS})

_TERMS: Final[dict[str, tuple[str, ...]]] = {
    SEXUAL_MINORS: (
        "lolicon", "shotacon", "jailbait", "child porn", "child pornography", "kiddie porn", "kiddy porn",
        "csam", "pedo porn", "underage porn", "underage sex",
    ),
    SEXUAL: (
        "nsfw", "nude", "nudes", "nudity", "naked", "porn", "porno", "pornographic", "pornography", "hentai",
        "sex", "sexual intercourse", "intercourse", "sex act", "sex scene", "having sex", "erotic", "erotica",
        "genitals", "genitalia", "penis", "vagina", "vulva", "clitoris", "nipple", "nipples", "areola",
        "topless", "bottomless", "blowjob", "handjob", "footjob", "cumshot", "cum", "orgasm", "masturbate",
        "masturbating", "masturbation", "ejaculate", "ejaculating", "ejaculation", "dildo", "sex toy", "bdsm",
        "boobs", "titties", "anal", "anal sex", "oral sex", "threesome", "orgy", "gangbang",
        "spread legs", "stripper", "striptease", "lewd", "ahegao", "futanari", "bukkake", "creampie",
        "xxx", "onlyfans", "camgirl", "undressed", "no clothes", "without clothes", "fully exposed",
    ),
    SEXUAL_VIOLENCE: (
        "rape", "raped", "raping", "rapist", "sexual assault", "sexually assaulted", "molest", "molested",
        "molesting", "molestation", "molester", "non consensual", "nonconsensual", "forced sex",
    ),
    VIOLENCE_GRAPHIC: (
        "dismembered", "dismembering", "dismemberment", "decapitated", "decapitating", "decapitation",
        "beheaded", "beheading", "disemboweled", "disembowelled", "disembowelment", "eviscerated",
        "evisceration", "mutilated", "mutilating", "mutilation", "severed head", "severed limbs", "flayed",
        "gory", "blood and gore", "guts spilling", "torture porn", "snuff film", "exploding head",
    ),
    HATE: tuple(
        codecs.decode(word, "rot13")
        for word in ("avttre", "avttn", "snttbg", "xvxr", "fcvp", "jrgonpx", "tbbx")
    ),
    SELF_HARM: (
        "self harm", "self harming", "selfharm", "self injury", "cutting myself", "cut myself",
        "slit wrists", "slit my wrists", "slitting wrists", "slitting my wrists", "kill myself",
        "killing myself", "hang myself", "hanging myself", "commit suicide", "committing suicide",
        "suicide by hanging", "pro ana", "thinspiration", "thinspo",
    ),
    MINOR: (
        "child", "children", "childs", "kid", "kids", "kiddo", "minor", "minors", "underage", "underaged",
        "preteen", "pre teen", "tween", "toddler", "infant", "newborn", "baby", "babies", "juvenile",
        "prepubescent", "pubescent", "schoolgirl", "schoolboy", "school girl", "school boy", "loli", "lolis",
        "shota", "teen", "teens", "teenage", "teenager", "young girl", "little girl", "young boy",
        "little boy", "small girl", "small boy", "kindergarten", "elementary school", "middle school",
        "junior high", "grade schooler",
    ),
    SUGGESTIVE: (
        "sexy", "seductive", "seducing", "sensual", "provocative", "lingerie", "underwear", "panties",
        "bikini", "bra", "undressing", "stripping", "bedroom eyes", "sultry", "lust", "lustful", "kinky",
        "fetish", "busty", "cleavage",
    ),
    CLOTHING: (
        "clothes", "clothing", "clothed", "dressed", "fully clothed", "underwear", "swimsuit", "bikini",
    ),
}  # fmt: skip

# Innocent phrases that contain a blocked word; removed before matching.
EXCEPTIONS: Final = (
    "cum laude",
    "nude lipstick",
    "nude heels",
    "nude color",
    "nude colors",
    "nude colour",
    "nude colours",
    "nude palette",
)

_NUMBERS: Final = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
    "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
)  # fmt: skip
_NUMBER_WORDS: Final = {word: value for value, word in enumerate(_NUMBERS)}
_AGE: Final = re.compile(
    r"(?<!\w)(?:(?P<digits>\d{1,2})|(?P<word>[a-z]+))\s?"
    r"(?:years?\s?old|yrs?\s?old|yo|y\s?o)(?!\w)"
    r"|(?<!\w)(?:aged|age)\s(?:(?P<digits2>\d{1,2})|(?P<word2>[a-z]+))(?!\w)"
)
ADULT_AGE: Final = 18


def blocklist_terms() -> list[Term]:
    return [Term(text, category) for category, texts in _TERMS.items() for text in texts]


def default_blocklist() -> Blocklist:
    """The default list with its signal categories and exceptions; build once and share (it is immutable)."""
    return Blocklist(blocklist_terms(), exceptions=EXCEPTIONS)


def mentions_minor_age(text: str) -> bool:
    """Whether `text` gives an age under 18: "13yo", "a 12-year-old", "fifteen years old", "aged 9"."""
    basic = normalize(text, leet=False)
    for hit in _AGE.finditer(basic):
        digits = hit.group("digits") or hit.group("digits2")
        word = hit.group("word") or hit.group("word2")
        if digits is not None:
            age = int(digits)
        elif word is not None and word in _NUMBER_WORDS:
            age = _NUMBER_WORDS[word]
        else:
            continue
        if age < ADULT_AGE:
            return True
    return False
