"""Typed slash-command options → the shared grammar's flags, appended to the prompt so core parses one thing.

The flags are spelled like the options (`--aspect`, `--guidance`, `--count`), so core's messages about a bad
value name the option the user filled in. `--no` goes last: it takes everything up to the next flag.
"""

from __future__ import annotations

_FLAGS = (
    ("aspect", "--aspect"),
    ("seed", "--seed"),
    ("steps", "--steps"),
    ("guidance", "--guidance"),
    ("model", "--model"),
    ("count", "--count"),
    ("strength", "--strength"),
    ("size", "--size"),
    ("lora", "--lora"),
    ("sampler", "--sampler"),
    ("control", "--control"),
    ("control_weight", "--cw"),
)


def with_flags(prompt: str, options: dict[str, object | None]) -> str:
    """The prompt followed by a flag for every option that was given."""
    unknown = set(options) - {name for name, _ in _FLAGS} - {"negative"}
    if unknown:
        raise ValueError(f"no flag for options {sorted(unknown)}")
    parts = [prompt.strip()]
    for name, flag in _FLAGS:
        value = options.get(name)
        if value is not None:
            parts.append(f"{flag} {value}")
    negative = options.get("negative")
    if negative is not None:
        parts.append(f"--no {negative}")
    return " ".join(parts)
