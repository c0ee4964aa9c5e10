"""How to make a result again: its request written back as an /imagine command line, and what else /info says.

The command uses the grammar's own flags (core.commands.flags) with the values the request ran with, so pasting
it gives the same parameters: the exact size rather than the aspect ratio asked for, the first image's seed, the
model, steps and guidance. A style preset was already applied to the prompt, so the prompt is shown as it ran
(and the style named). What a command line can't carry (an uploaded source image) is said in words.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image

from core.models.catalog import BackendKind, get_model
from core.models.request import GenerationRequest, Mode
from core.models.result import ResultEvent

PARAMETER_CHUNKS = (
    "parameters",
    "prompt",
    "negative_prompt",
    "seed",
    "model",
)  # worker/postprocess.py writes them


def _number(value: float) -> str:
    return f"{value:g}"


def command_line(request: GenerationRequest, seed: int | None = None) -> str:
    """`/imagine <prompt> --no … --size WxH --seed S --steps N --cfg G --n K --model M` for this request."""
    spec = get_model(request.model)
    parts = [f"/imagine {' '.join(request.prompt.split())}"]
    if request.negative_prompt:
        parts.append(f"--no {request.negative_prompt}")
    parts.append(f"--size {request.width}x{request.height}")
    parts.append(f"--seed {seed if seed is not None else request.seeds[0]}")
    if spec.backend is not BackendKind.OPENAI:
        parts.append(f"--steps {request.steps}")
        parts.append(f"--cfg {_number(request.guidance)}")
    parts.append(f"--n {request.n}")
    parts.append(f"--model {spec.name}")
    if request.sampler:
        parts.append(f"--sampler {request.sampler}")
    for lora in request.loras:
        parts.append(f"--lora {lora.name}:{_number(lora.weight)}")
    if request.control is not None:
        parts.append(f"--control {request.control.kind} --cw {_number(request.control.weight)}")
    if request.mode is Mode.IMG2IMG and request.strength is not None:
        parts.append(f"--strength {_number(request.strength)}")
    if request.prefer_cloud:
        parts.append("--cloud")
    return " ".join(parts)


@dataclass(frozen=True)
class ResultInfo:
    """What /info shows about a result: how to make it again, and what the stored file says it is."""

    request_id: str
    command: str
    notes: tuple[str, ...]  # what the command line can't carry
    stored_parameters: str | None  # the PNG's own "parameters" text chunk, when the file has one
    provenance: str

    def text(self) -> str:
        lines = [f"Result {self.request_id}", "Make it again with:", self.command, *self.notes]
        if self.stored_parameters:
            lines += ["The file itself says:", self.stored_parameters]
        lines += ["Provenance:", self.provenance]
        return "\n".join(lines)


def recipe_notes(request: GenerationRequest, result: ResultEvent) -> tuple[str, ...]:
    notes = []
    seeds = [image.seed for image in result.images if image.seed is not None]
    if len(set(seeds)) > 1 and not request.seed_explicit:
        notes.append("Each image had its own seed: " + ", ".join(str(seed) for seed in seeds) + ".")
    if request.style:
        notes.append(f"The prompt is shown with the “{request.style}” style already applied.")
    if request.mode not in (Mode.TXT2IMG, Mode.REROLL):
        origin = {
            Mode.IMG2IMG: "an uploaded image",
            Mode.VARIATION: "a variation of an earlier result",
            Mode.UPSCALE: "an upscale of an earlier result",
        }.get(request.mode, f"an earlier image ({request.mode.value})")
        notes.append(f"It started from {origin}, which a command line can't carry.")
    if request.control is not None:
        notes.append(f"It was guided by a {request.control.kind} control image; attach yours with --control.")
    if result.revised_prompt:
        notes.append(f"OpenAI rewrote the prompt as: {result.revised_prompt}")
    return tuple(notes)


def png_parameters(data: bytes) -> str | None:
    """The generation parameters a stored PNG carries in its text chunks (None for other files). Blocking."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            chunks = {str(k): str(v) for k, v in getattr(image, "text", {}).items()}
    except OSError:
        return None
    if "parameters" in chunks:
        return chunks["parameters"]
    found = [f"{name}: {chunks[name]}" for name in PARAMETER_CHUNKS if name in chunks]
    return "; ".join(found) or None
