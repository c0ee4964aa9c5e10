"""Unit tests: typed options become the grammar's flags, without a network."""

from __future__ import annotations

from bots.discord.flags import with_flags
from core.commands.grammar import parse_imagine
from core.settings import LimitsSettings


def test_options_become_flags_core_parses() -> None:
    text = with_flags(
        "a lighthouse",
        {
            "aspect": "16:9",
            "seed": 7,
            "negative": "boats, people",
            "steps": 3,
            "guidance": 6.5,
            "model": "tiny",
            "count": 2,
        },
    )
    options = parse_imagine(text, default_model="tiny", limits=LimitsSettings())
    assert (options.prompt, options.seed, options.steps, options.guidance, options.n) == (
        "a lighthouse",
        7,
        3,
        6.5,
        2,
    )
    assert options.negative_prompt == "boats, people" and options.width > options.height


def test_unset_options_add_nothing() -> None:
    assert with_flags("  a cat ", {"seed": None, "negative": None}) == "a cat"
