"""The sampler names users know (from AUTOMATIC1111 and ComfyUI), as the one table every process reads.

A request carries the canonical name (`SAMPLERS`' keys, lowercase); the worker maps it to a diffusers scheduler
built from the model's own scheduler config (worker/samplers.py). No ML import here: names only.
"""

from __future__ import annotations

import re

# canonical name → what users see
SAMPLERS: dict[str, str] = {
    "euler": "Euler",
    "euler a": "Euler a",
    "dpm++ 2m": "DPM++ 2M",
    "dpm++ 2m karras": "DPM++ 2M Karras",
    "ddim": "DDIM",
    "unipc": "UniPC",
    "lcm": "LCM",
}
# Other spellings seen in the wild (after `_normal`): k-diffusion and ComfyUI names, "ancestral".
_ALIASES: dict[str, str] = {
    "euler ancestral": "euler a",
    "euler_a": "euler a",
    "k euler": "euler",
    "k euler a": "euler a",
    "dpmpp 2m": "dpm++ 2m",
    "dpmpp 2m karras": "dpm++ 2m karras",
    "dpm++ 2m k": "dpm++ 2m karras",
    "uni pc": "unipc",
}
_SEPARATORS = re.compile(r"[\s_\-]+")


def _normal(text: str) -> str:
    return _SEPARATORS.sub(" ", text.strip().lower()).strip()


def sampler_names() -> str:
    """The names as users see them, for messages: "Euler, Euler a, DPM++ 2M, …"."""
    return ", ".join(SAMPLERS.values())


def canonical_sampler(text: str) -> str | None:
    """The canonical name for a spelling ("DPM++ 2M Karras", "dpmpp_2m_karras", "euler-a"), or None."""
    normal = _normal(text)
    if normal in SAMPLERS:
        return normal
    return _ALIASES.get(normal)


def longest_sampler_prefix(text: str) -> tuple[str, str] | None:
    """A sampler name written at the start of `text` (it may hold spaces: "DPM++ 2M Karras a cat"), and the rest.

    The longest name that ends at a word boundary wins, so "dpm++ 2m karras" is not read as "dpm++ 2m".
    """
    words = text.split()
    for count in range(min(len(words), 4), 0, -1):
        if canonical_sampler(" ".join(words[:count])) is not None:
            rest = text.lstrip()
            for word in words[:count]:
                rest = rest[rest.index(word) + len(word) :]
            return " ".join(words[:count]), rest
    return None
