"""The /imagine grammar's flags: how each may be spelled, an example of each, how a value is quoted back."""

from __future__ import annotations

# Spelling (lowercase, no dashes) → canonical flag name.
FLAG_ALIASES: dict[str, str] = {
    "ar": "ar",
    "aspect": "ar",
    "size": "size",
    "seed": "seed",
    "no": "no",
    "steps": "steps",
    "cfg": "cfg",
    "guidance": "cfg",
    "n": "n",
    "count": "n",
    "model": "model",
    "strength": "strength",
    "cloud": "cloud",
    "lora": "lora",
    "sampler": "sampler",
    "scheduler": "sampler",
    "control": "control",
    "cw": "cw",
    "style": "style",
    "region": "region",
}
# Flags that may be given more than once (each adds one).
REPEATABLE = frozenset({"lora"})
FLAG_EXAMPLES: dict[str, str] = {
    "ar": "--ar 16:9",
    "size": "--size 768x512",
    "seed": "--seed 1234",
    "no": "--no people, boats",
    "steps": "--steps 30",
    "cfg": "--cfg 6.5",
    "n": "--n 4",
    "model": "--model sdxl",
    "strength": "--strength 0.6",
    "cloud": "--cloud",
    "lora": "--lora pixel-art:0.7",
    "sampler": "--sampler DPM++ 2M Karras",
    "control": "--control canny",
    "cw": "--cw 0.8",
    "style": "--style watercolor",
    "region": "--region 0,0,50,100",
}

_SHOWN_CHARS = 40


def shown(value: str) -> str:
    """A user's value, short enough to quote back."""
    value = " ".join(value.split())
    return value if len(value) <= _SHOWN_CHARS else value[: _SHOWN_CHARS - 1] + "…"
