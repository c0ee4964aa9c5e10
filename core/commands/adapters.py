"""The style-and-control flags: `--lora name[:weight]` (up to three), `--control kind` with `--cw`, `--sampler name`.

Each is checked against the operator's catalog (AdapterSettings) and the model's family before anything is
queued; a refusal is an InvalidRequest naming the flag and listing what exists. The grammar calls these; the
service adds the community's own restrictions (`check_allowed`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from core.commands.flags import shown
from core.errors import InvalidRequest
from core.models.catalog import BackendKind, ModelSpec
from core.models.request import LoraRef
from core.models.sampler import canonical_sampler, sampler_names
from core.settings import CONTROL_KINDS, AdapterSettings

MAX_LORAS = 3
MIN_LORA_WEIGHT, MAX_LORA_WEIGHT = -2.0, 2.0
MIN_CONTROL_WEIGHT, MAX_CONTROL_WEIGHT = 0.0, 2.0
_LORA = re.compile(r"^(?P<name>[^:]+?)(?::(?P<weight>[+-]?(?:[0-9]{1,3}(?:\.[0-9]{0,6})?|\.[0-9]{1,6})))?$")


def lora_names(adapters: AdapterSettings, spec: ModelSpec | None = None) -> list[str]:
    """The catalog's LoRA names, only those for `spec`'s family when given."""
    return sorted(name for name, lora in adapters.loras.items() if spec is None or lora.family is spec.family)


def _choices(adapters: AdapterSettings, spec: ModelSpec) -> str:
    fitting = lora_names(adapters, spec)
    if fitting:
        return f"The LoRAs for {spec.name} are: {', '.join(fitting)} (see /loras)."
    return f"There are no LoRAs for {spec.name} on this bot (see /loras)."


def parse_loras(
    values: list[tuple[str, str]], spec: ModelSpec, adapters: AdapterSettings
) -> tuple[LoraRef, ...]:
    """`--lora` values as written ((label, value) pairs) → LoraRefs, checked against the catalog and the model."""
    if len(values) > MAX_LORAS:
        raise InvalidRequest(
            "lora", f"You gave --lora {len(values)} times; at most {MAX_LORAS} LoRAs go together."
        )
    refs: list[LoraRef] = []
    for label, value in values:
        match = _LORA.match(value.strip())
        if match is None:
            raise InvalidRequest(
                "lora",
                f"{label} takes a name and, if you like, a weight from {MIN_LORA_WEIGHT:g} to {MAX_LORA_WEIGHT:g}, "
                f"like --lora pixel-art:0.7 (you wrote {shown(value)}).",
            )
        name = match["name"].strip().lower()
        lora = adapters.loras.get(name)
        if lora is None:
            raise InvalidRequest("lora", f"I don't know the LoRA “{shown(name)}”. {_choices(adapters, spec)}")
        if spec.backend is not BackendKind.DIFFUSERS or lora.family is not spec.family:
            raise InvalidRequest(
                "lora",
                f"The LoRA “{name}” is made for {lora.family.value} models, so it doesn't fit {spec.name}. "
                f"{_choices(adapters, spec)}",
            )
        weight = lora.weight if match["weight"] is None else float(match["weight"])
        if not MIN_LORA_WEIGHT <= weight <= MAX_LORA_WEIGHT:
            raise InvalidRequest(
                "lora",
                f"A LoRA's weight goes from {MIN_LORA_WEIGHT:g} to {MAX_LORA_WEIGHT:g} (you wrote {shown(value)}).",
            )
        if any(ref.name == name for ref in refs):
            raise InvalidRequest("lora", f"The LoRA “{name}” is named twice: please name it once.")
        refs.append(LoraRef(name=name, weight=weight))
    return tuple(refs)


def with_triggers(prompt: str, loras: Iterable[LoraRef], adapters: AdapterSettings) -> str:
    """The prompt with each LoRA's trigger word in front, unless the user already wrote it."""
    triggers = []
    for ref in loras:
        trigger = adapters.loras[ref.name].trigger.strip()
        if trigger and trigger.lower() not in prompt.lower():
            triggers.append(trigger)
    return ", ".join([*triggers, prompt]) if triggers else prompt


def check_allowed(loras: Iterable[LoraRef], denied: Iterable[str]) -> None:
    """Refuse a LoRA the community's moderators have turned off."""
    blocked = set(denied)
    for ref in loras:
        if ref.name in blocked:
            raise InvalidRequest(
                "lora", f"The moderators here have turned off the LoRA “{ref.name}”; please pick another."
            )


def parse_sampler(label: str, value: str, spec: ModelSpec) -> str:
    """A --sampler value → its canonical name; refused for models that need their own scheduler."""
    if spec.own_sampler or spec.backend is not BackendKind.DIFFUSERS:
        raise InvalidRequest(
            "sampler",
            f"{spec.name} needs its own sampler, so {label} can't be used with it: remove {label}, or pick "
            f"another model for the samplers {sampler_names()}.",
        )
    name = canonical_sampler(value)
    if name is None:
        raise InvalidRequest(
            "sampler", f"{label} must be one of: {sampler_names()} (you wrote {shown(value)})."
        )
    return name


def parse_control(label: str, value: str, spec: ModelSpec, adapters: AdapterSettings) -> str:
    """A --control kind, if this bot can do it for `spec`: a ControlNet for its family, an annotator if needed."""
    kind = value.strip().lower()
    if kind not in CONTROL_KINDS:
        raise InvalidRequest(
            "control", f"{label} must be one of: {', '.join(CONTROL_KINDS)} (you wrote {shown(value)})."
        )
    control = adapters.control
    available = control.available(spec.family) if spec.backend is BackendKind.DIFFUSERS else []
    if kind in available:
        return kind
    offer = f"Here {spec.name} can use: {', '.join(available)}." if available else ""
    if kind in control.models.get(spec.family, {}) and control.annotator(kind) is None:
        reason = f"no {kind} annotator is set up on this bot, so I can't read {kind} from a picture."
    else:
        reason = f"there is no {kind} ControlNet for {spec.name} on this bot."
    raise InvalidRequest("control", f"{label} {kind}: {reason} {offer}".strip())


def lora_catalog(adapters: AdapterSettings, denied: Iterable[str] = ()) -> str:
    """The /loras text: every adapter with its family, trigger word and default weight."""
    if not adapters.loras:
        return "There are no LoRAs on this bot."
    blocked = set(denied)
    lines = ["LoRAs (use --lora name or --lora name:0.7, up to three):"]
    for name in lora_names(adapters):
        lora = adapters.loras[name]
        parts = [f"for {lora.family.value}", f"weight {lora.weight:g}"]
        if lora.trigger:
            parts.append(f"adds “{lora.trigger}”")
        if name in blocked:
            parts.append("turned off here")
        about = f" — {lora.description}" if lora.description else ""
        lines.append(f"• {name} ({', '.join(parts)}){about}")
    return "\n".join(lines)
