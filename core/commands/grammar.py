"""The command grammar every front end shares: `a lighthouse at dusk --ar 16:9 --seed 7 --no people, boats`.

`split_flags` finds the flags in a command; `parse_imagine` checks them against the model catalog and the
limits and returns an `ImagineOptions`. The flags' spellings are in core.commands.flags, and the size maths
(`size_for_aspect`: a ratio into pixels for one model) in core.commands.sizes.

Lexical rules:
- A flag is `--name` at the start of the text or after whitespace. Names are case-insensitive and have
  aliases (`--aspect` is `--ar`, `--guidance` is `--cfg`, `--count` is `--n`).
- Phones turn `--` into a dash. `−−` (two minus signs) counts as `--`. A single em-dash, en-dash or
  horizontal bar (— – ―, or two of them) counts only when a known flag name follows it and ends with
  whitespace, `=` or the end of the text: `—ar 16:9` is a flag, `— at dusk` and `—atmospheric` are prose.
- A dash glued to the word before it is prose (`state—of—the—art`, `well--lit`), except that `dusk--ar 16:9`
  (`--` right after text, then a known flag name) is refused with a hint to add a space: it is almost
  certainly a flag the user meant, and dropping it silently would be worse.
- `--no` takes everything up to the next flag; `--cloud` takes no value; `--sampler` takes the longest sampler
  name that follows (`--sampler DPM++ 2M Karras`); every other flag takes one word
  (`--size 768 x 512` and `--ar 16 : 9` are read whole). `--lora` may be given up to three times.
  `--flag=value` works too. Words after a flag's value go back into the prompt.

Every problem is an `InvalidRequest` whose `.field` is the flag's canonical name (`ar`, `size`, `seed`, `no`,
`steps`, `cfg`, `n`, `model`, `strength`, `cloud`, `lora`, `sampler`, `control`, `cw`), the unknown name for
an unknown flag, or `prompt`; its message names the flag as the user wrote it, the value, and what is allowed.
Nothing is clamped silently.
Characters no command may hold, and prompts with nothing visible, are refused first (core.commands.text).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from core.commands.adapters import (
    MAX_CONTROL_WEIGHT,
    MIN_CONTROL_WEIGHT,
    parse_control,
    parse_loras,
    parse_sampler,
    with_triggers,
)
from core.commands.flags import FLAG_ALIASES, FLAG_EXAMPLES, REPEATABLE
from core.commands.flags import shown as _shown
from core.commands.regions import Region, parse_region
from core.commands.sizes import aspect_size, explicit_size, size_for_aspect
from core.commands.text import check_characters, check_prompt_text
from core.errors import InvalidRequest
from core.models.catalog import BackendKind, ModelSpec, get_model, model_names
from core.models.request import LoraRef
from core.models.sampler import longest_sampler_prefix
from core.settings import AdapterSettings, LimitsSettings

logger = logging.getLogger(__name__)

MAX_SEED = 2**32 - 1
MIN_GUIDANCE = 0.0
MAX_GUIDANCE = 30.0
MIN_STRENGTH = 0.05
MAX_STRENGTH = 1.0

_MARKER = re.compile(r"(?P<dash>--|−−|[—–―]{1,2})(?P<name>[A-Za-z][A-Za-z0-9_]*)")
_STRONG_DASHES = frozenset({"--", "−−"})
_AR_VALUE = re.compile(r"[0-9]+\s*:\s*[0-9]+(?!\S)")
_SIZE_VALUE = re.compile(r"[0-9]+\s*[xX×*]\s*[0-9]+(?!\S)")
_REGION_VALUE = re.compile(r"[0-9.]+(?:\s*,\s*[0-9.]+){3}(?!\S)")
_INT = re.compile(r"[+-]?[0-9]{1,30}")
_STYLE_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
_FLOAT = re.compile(r"[+-]?(?:[0-9]{1,30}(?:\.[0-9]{0,30})?|\.[0-9]{1,30})")


@dataclass(frozen=True)
class UserDefaults:
    """Per-user defaults from /settings; flags override them."""

    aspect: str | None = None  # "16:9"
    model: str | None = None
    n: int | None = None


@dataclass(frozen=True)
class ImagineOptions:
    """A validated /imagine command."""

    prompt: str
    negative_prompt: str
    model: str  # canonical catalog name
    width: int
    height: int
    steps: int
    guidance: float
    seed: int | None  # None: the service picks random seeds
    n: int
    strength: float | None  # --strength, for img2img; None when not given
    prefer_cloud: bool  # --cloud
    notes: tuple[str, ...]  # things to tell the user, e.g. a size that was snapped
    loras: tuple[LoraRef, ...] = ()  # --lora, checked against the catalog and the model's family
    sampler: str | None = None  # --sampler, canonical (core.models.sampler)
    control: str | None = None  # --control kind; the picture comes with the command
    control_weight: float = 1.0  # --cw
    style: str | None = None  # --style: a preset's name (core.governance.styles applies it at submit time)
    region: Region | None = None  # --region: repaint this rectangle of the attached image (inpaint)


@dataclass(frozen=True)
class _Flag:
    name: str  # canonical, e.g. "ar"
    written: str  # as typed, lowercased, without dashes, e.g. "aspect"
    value: str  # raw value, stripped; "" when none was given

    @property
    def label(self) -> str:
        return f"--{self.written}"


def _known_flags() -> str:
    return ", ".join(f"--{name}" for name in FLAG_EXAMPLES)


def _unknown_flag(name: str) -> InvalidRequest:
    shown = _shown(name)
    hint = ""
    lowered = name.lower()
    for spelling in sorted(FLAG_ALIASES, key=len, reverse=True):
        if lowered.startswith(spelling) and lowered[len(spelling) : len(spelling) + 1].isdigit():
            example = FLAG_EXAMPLES[FLAG_ALIASES[spelling]].replace(
                f"--{FLAG_ALIASES[spelling]}", f"--{spelling}"
            )
            hint = f" If you meant --{spelling}, put a space before its value, like {example}."
            break
    return InvalidRequest(
        shown.lower(), f"I don't know the flag --{shown}. The flags are: {_known_flags()}.{hint}"
    )


def _scan(text: str) -> tuple[str, list[_Flag]]:
    """The prompt text (whitespace normalised) and the flags in the order written."""
    markers: list[re.Match[str]] = []
    for match in _MARKER.finditer(text):
        start, end = match.span()
        glued = start > 0 and not text[start - 1].isspace()
        written = match["name"].lower()
        known = written in FLAG_ALIASES
        after = text[end : end + 1]
        bounded = after in ("", "=") or after.isspace()
        strong = match["dash"] in _STRONG_DASHES
        if not glued and strong:
            if not known:
                raise _unknown_flag(match["name"])
            markers.append(match)
        elif not glued and known and bounded:
            markers.append(match)
        elif glued and strong and known and bounded:
            word = text[:start].rsplit(maxsplit=1)[-1] + text[start:end]
            raise InvalidRequest(
                FLAG_ALIASES[written],
                f"“{_shown(word)}” looks like it holds the flag --{written}: please put a space before "
                f"--{written}, or write the prompt without “--” there.",
            )
    pieces = [text[: markers[0].start()] if markers else text]
    flags: list[_Flag] = []
    for index, match in enumerate(markers):
        tail_end = markers[index + 1].start() if index + 1 < len(markers) else len(text)
        written = match["name"].lower()
        name = FLAG_ALIASES[written]
        value, rest = _take_value(name, text[match.end() : tail_end])
        flags.append(_Flag(name, written, value))
        pieces.append(rest)
    prompt = " ".join(" ".join(pieces).split())
    return prompt, flags


def _take_value(name: str, tail: str) -> tuple[str, str]:
    """A flag's raw value from the text that follows it, and what is left over for the prompt."""
    explicit = tail.startswith("=")
    if explicit:
        tail = tail[1:]
    if name == "no":
        return tail.strip(), ""
    if name == "cloud" and not explicit:
        return "", tail
    stripped = tail.lstrip()
    if name == "sampler":  # a sampler's name may hold spaces: --sampler DPM++ 2M Karras
        found = longest_sampler_prefix(stripped)
        if found is not None:
            return found
    pair = {"ar": _AR_VALUE, "size": _SIZE_VALUE, "region": _REGION_VALUE}.get(name)
    match = pair.match(stripped) if pair else None
    if match:
        return "".join(match.group().split()), stripped[match.end() :]
    parts = stripped.split(maxsplit=1)
    if not parts:
        return "", ""
    return parts[0], parts[1] if len(parts) > 1 else ""


def split_flags(text: str) -> tuple[str, list[tuple[str, str]]]:
    """The prompt text and the flags as (canonical name, raw value) pairs, in the order written.

    Raises InvalidRequest only for lexical problems (an unknown flag, a flag glued to text); values are
    not checked, duplicates are kept, and a flag without a value has the value "".
    """
    prompt, flags = _scan(text)
    return prompt, [(flag.name, flag.value) for flag in flags]


def _parse_int(flag: _Flag, low: int, high: int, scope: str = "") -> int:
    if _INT.fullmatch(flag.value):
        number = int(flag.value)
        if low <= number <= high:
            return number
    raise InvalidRequest(
        flag.name,
        f"{flag.label} must be a whole number from {low} to {high}{scope} (you wrote {_shown(flag.value)}).",
    )


def _parse_float(flag: _Flag, low: float, high: float) -> float:
    if _FLOAT.fullmatch(flag.value):
        number = float(flag.value)
        if low <= number <= high:
            return number
    raise InvalidRequest(
        flag.name, f"{flag.label} must be a number from {low:g} to {high:g} (you wrote {_shown(flag.value)})."
    )


def _choose_model(flag: _Flag | None, saved: str | None, default_model: str) -> ModelSpec:
    choices = ", ".join(model_names())
    if flag is not None:
        try:
            return get_model(flag.value)
        except InvalidRequest:
            raise InvalidRequest(
                "model", f"{flag.label} must be one of: {choices} (you wrote {_shown(flag.value)})."
            ) from None
    if saved:
        try:
            return get_model(saved)
        except InvalidRequest:
            raise InvalidRequest(
                "model",
                f"Your saved default model “{_shown(saved)}” is no longer available. Choose one of {choices} "
                "with /settings, or add --model to this command.",
            ) from None
    return get_model(default_model)


def _collect(flags: list[_Flag]) -> dict[str, _Flag]:
    """The flags by canonical name; refuses duplicates and missing (or unwanted) values."""
    given: dict[str, _Flag] = {}
    for flag in flags:
        earlier = given.get(flag.name)
        if earlier is not None and flag.name not in REPEATABLE:
            also = "" if earlier.written == flag.written else f" (as {earlier.label} and {flag.label})"
            raise InvalidRequest(flag.name, f"{flag.label} was given twice{also}: please keep only one.")
        given[flag.name] = flag
    for flag in flags:
        if flag.name == "cloud" and flag.value:
            raise InvalidRequest(
                "cloud",
                f"--cloud takes no value (you wrote {flag.label}={_shown(flag.value)}): write just --cloud.",
            )
        if flag.name != "cloud" and not flag.value:
            raise InvalidRequest(
                flag.name, f"{flag.label} needs a value, for example {FLAG_EXAMPLES[flag.name]}."
            )
    return given


def _image_count(flag: _Flag | None, limits: LimitsSettings, saved: int | None, notes: list[str]) -> int:
    if flag is not None:
        return _parse_int(flag, 1, limits.max_images)
    if saved is None:
        return min(limits.default_images, limits.max_images)
    if saved < 1:
        raise InvalidRequest(
            "n",
            f"Your saved default image count ({saved}) is not valid: set one from 1 to {limits.max_images} "
            "with /settings, or add --n to this command.",
        )
    if saved > limits.max_images:
        notes.append(
            f"Your default is {saved} images, but this server makes at most {limits.max_images}, "
            f"so {limits.max_images} were made."
        )
        return limits.max_images
    return saved


def _negative_prompt(flag: _Flag, spec: ModelSpec, limits: LimitsSettings) -> str:
    terms = [" ".join(term.split()) for term in flag.value.split(",")]
    negative = ", ".join(term for term in terms if term)
    if not negative:
        raise InvalidRequest("no", f"{flag.label} needs a value, for example {FLAG_EXAMPLES['no']}.")
    # OpenAI models take no negative prompt either, but the backend folds it into the text.
    if not spec.supports_negative and spec.backend is not BackendKind.OPENAI:
        takers = ", ".join(s.name for s in map(get_model, model_names()) if s.supports_negative)
        raise InvalidRequest(
            "no",
            f"{spec.name} ignores negative prompts, so --no can't be used with it: remove --no, "
            f"or pick a model that takes them ({takers}).",
        )
    if len(negative) > limits.max_negative_chars:
        raise InvalidRequest(
            "no",
            f"--no is {len(negative)} characters long; the limit is {limits.max_negative_chars}. "
            "Please shorten it.",
        )
    return negative


def style_name(text: str) -> str | None:
    """A style preset's name as stored (lowercase), or None when it can't be one."""
    name = text.strip().lower()
    return name if _STYLE_NAME.fullmatch(name) else None


def _style_name(flag: _Flag) -> str:
    name = style_name(flag.value)
    if name is None:
        raise InvalidRequest(
            "style",
            f"{flag.label} takes a preset's name: letters, digits, - or _ (you wrote {_shown(flag.value)}). "
            "/styles lists them.",
        )
    return name


def _image_size(
    given: dict[str, _Flag], spec: ModelSpec, saved_aspect: str | None
) -> tuple[int, int, str | None]:
    if "ar" in given and "size" in given:
        raise InvalidRequest(
            "size",
            f"{given['ar'].label} and {given['size'].label} contradict each other: please use only one.",
        )
    if "size" in given:
        return explicit_size(spec, given["size"].value, given["size"].label)
    if "ar" in given:
        return aspect_size(spec, given["ar"].value, given["ar"].label)
    if saved_aspect:
        try:
            return size_for_aspect(spec, saved_aspect)
        except InvalidRequest as exc:
            raise InvalidRequest(
                "ar",
                f"Your saved default aspect ratio doesn't work: {exc.message} "
                "Change it with /settings, or add --ar to this command.",
            ) from None
    return spec.native_width, spec.native_height, None


def _control(given: dict[str, _Flag], spec: ModelSpec, adapters: AdapterSettings) -> tuple[str | None, float]:
    """--control's kind (None without it) and --cw's weight (only with --control)."""
    if "control" not in given:
        if "cw" in given:
            raise InvalidRequest(
                "cw", f"{given['cw'].label} sets --control's weight: add --control too, or remove it."
            )
        return None, 1.0
    kind = parse_control(given["control"].label, given["control"].value, spec, adapters)
    weight = _parse_float(given["cw"], MIN_CONTROL_WEIGHT, MAX_CONTROL_WEIGHT) if "cw" in given else 1.0
    return kind, weight


def parse_imagine(
    text: str,
    *,
    default_model: str,
    limits: LimitsSettings,
    defaults: UserDefaults | None = None,
    adapters: AdapterSettings | None = None,
) -> ImagineOptions:
    """Validate an /imagine command; flags override the user's defaults, which override the server's."""
    defaults = defaults or UserDefaults()
    check_characters(text)
    prompt, flags = _scan(text)
    given = _collect(flags)
    spec = _choose_model(given.get("model"), defaults.model, default_model)
    cloud_model = spec.backend is BackendKind.OPENAI
    notes: list[str] = []

    steps = spec.default_steps
    if "steps" in given:
        if cloud_model:
            raise InvalidRequest(
                "steps", f"{spec.name} takes no --steps (it picks its own): please remove --steps."
            )
        steps = _parse_int(given["steps"], 1, spec.max_steps, f" for {spec.name}")

    guidance = spec.default_guidance
    if "cfg" in given:
        label = given["cfg"].label
        if cloud_model:
            raise InvalidRequest(
                "cfg", f"{spec.name} takes no {label} (it picks its own): please remove {label}."
            )
        guidance = _parse_float(given["cfg"], MIN_GUIDANCE, MAX_GUIDANCE)

    seed = _parse_int(given["seed"], 0, MAX_SEED) if "seed" in given else None
    n = _image_count(given.get("n"), limits, defaults.n, notes)

    strength = None
    if "strength" in given:
        if not spec.supports_img2img:
            raise InvalidRequest(
                "strength", f"{spec.name} can't start from an image, so --strength can't be used with it."
            )
        strength = _parse_float(given["strength"], MIN_STRENGTH, MAX_STRENGTH)

    negative = _negative_prompt(given["no"], spec, limits) if "no" in given else ""
    style = _style_name(given["style"]) if "style" in given else None
    region = None
    if "region" in given:
        if not spec.supports_img2img:
            raise InvalidRequest(
                "region", f"{spec.name} can't repaint part of an image, so --region can't be used with it."
            )
        region = parse_region(given["region"].value, given["region"].label)
    width, height, note = _image_size(given, spec, defaults.aspect)
    if note:
        notes.append(note)
    check_prompt_text(prompt, limits)
    adapters = adapters or AdapterSettings()
    loras = parse_loras([(f.label, f.value) for f in flags if f.name == "lora"], spec, adapters)
    sampler = (
        parse_sampler(given["sampler"].label, given["sampler"].value, spec) if "sampler" in given else None
    )
    control = _control(given, spec, adapters)

    options = ImagineOptions(
        prompt=with_triggers(prompt, loras, adapters),
        negative_prompt=negative,
        model=spec.name,
        width=width,
        height=height,
        steps=steps,
        guidance=guidance,
        seed=seed,
        n=n,
        strength=strength,
        prefer_cloud="cloud" in given,
        notes=tuple(notes),
        loras=loras,
        sampler=sampler,
        control=control[0],
        control_weight=control[1],
        style=style,
        region=region,
    )
    logger.debug("parsed imagine command: %r", options)
    return options
