"""What a worker runs and how: its jobs, threads and batching, the upscaler, the /describe captioner."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import (
    Field,
    field_validator,
    model_validator,
)

from core.settings.base import Group


class WorkerSettings(Group):
    models: list[str] = Field(default_factory=lambda: ["tiny"])  # loaded at start-up and kept warm
    max_jobs: int = Field(default=2, ge=1, le=16)  # 2 lets one job upload while the next one renders
    job_timeout_s: int = Field(default=120, ge=5)
    max_tries: int = Field(default=2, ge=1, le=10)
    poll_delay_s: float = Field(default=0.1, gt=0, le=5)
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    dtype: Literal["auto", "float16", "bfloat16", "float32"] = "auto"
    heartbeat_interval_s: float = Field(default=5.0, gt=0)  # a killed worker's jobs go back after 3 of these
    drain_s: float = Field(default=8.0, ge=0, le=3600)  # on SIGTERM, running jobs get this long, then go back
    model_cache_dir: Path = Path("imagebot-data/models")  # the built-in tiny model; real weights use HF_HOME
    # Catalog name → a local diffusers folder (model_index.json and its components) to load that model from
    # instead of its Hub repo: weights kept on disk, or worker/random_weights.py's real-size random ones.
    model_paths: dict[str, Path] = Field(default_factory=dict)
    preview_max_side: int = Field(default=1024, ge=64)
    preview_format: Literal["jpeg", "webp"] = "jpeg"
    # Live previews (worker/live_preview.py): the progress shows a small picture decoded from the latents, each
    # image-checked before it is published, at most once per interval (≥ 2 s, within the platforms' edit limits).
    live_previews: bool = True
    live_preview_interval_s: float = Field(default=2.0, ge=2.0, le=60)
    live_preview_max_side: int = Field(default=256, ge=32, le=512)
    name: str | None = None  # worker id in heartbeats; defaults to host:pid
    # Thread pools (worker/threads.py), so the model, the image check and the encoders don't fight over cores.
    # 0 = derived from the cores this process may use: on a CPU worker the model gets all but the
    # post-processing cores, and post-processing (image check, watermark, PNG, signing) gets 1 (¼ of them
    # above 4 cores), each of its tasks single-threaded.
    model_threads: int = Field(default=0, ge=0, le=256)  # torch intra-op threads for the model call
    post_threads: int = Field(default=0, ge=0, le=256)  # worker threads for checks and encoding
    # On a CPU worker, the model and post-processing may take turns on every core instead of the split above
    # (worker/threads.py CoreShare): the model pauses between steps while a job is checked and encoded. Off by
    # default: bench/throughput.py measured it slower than the split, and a model on every core slows down
    # many times over when anything else runs on the machine.
    cpu_turns: bool = False
    # Micro-batching (worker/batching.py): compatible text-to-image requests this worker holds share one
    # pipeline call of up to this many images (1 = off); per model by name, else the default. Only jobs the
    # worker already took from the fair queue can join, so max_jobs bounds a batch too: raise both together
    # (max_jobs = 2 × the batch keeps the device fed: the next batch gathers while the last one is stored).
    batch_max_images: int = Field(default=1, ge=1, le=64)
    batch_max_images_per_model: dict[str, int] = Field(default_factory=dict)
    batch_window_s: float = Field(default=0.0, ge=0, le=1)  # an idle device waits this long for companions
    # Batch invariance (worker/invariance.py): on a CPU worker, every pipeline call gives each image the kernel
    # shapes it gets rendered alone, so a batched image has the same bytes as the same request alone (tested on
    # the tiny model at 1 and 2 torch threads, this CPU and these torch/oneDNN/MKL builds; not another CPU or
    # version). No effect on a GPU, whose kernels also choose by shape (not checked there), nor under `compile`,
    # nor for a model not micro-batched (batch size 1): its requests never share a call. Cost measured by
    # bench/batch_invariance.py (10-20 % of a CPU worker's images/s).
    batch_invariant: bool = True
    # Pipeline speed switches (worker/acceleration.py), each reported at start-up.
    channels_last: bool = False  # NHWC weights: faster convolutions on tensor-core GPUs
    attention_slicing: bool = False  # less memory, slower: small cards only
    vae_tiling: bool = False  # decode large images tile by tile in bounded memory
    vae_slicing: bool = False  # decode a batch one image at a time
    cpu_offload: bool = False  # GPU only: components wait on the CPU until they run (small cards)
    compile: bool = False  # torch.compile the UNet/transformer; compiled by a warm-up render at start-up
    compile_mode: Literal["default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"] = (
        "default"
    )
    # Models warm at once (worker/registry.py): the weights (parameters + buffers) of the resident models stay
    # within this many GiB; loading one more evicts the least recently used that no running job uses. 0: no limit.
    model_memory_budget_gb: float = Field(default=0.0, ge=0)
    # The VAE each model decodes with (worker/vae.py), by model name or family ("sdxl"): a Hub repo or a folder
    # (one holding an AutoencoderKL, or a whole pipeline with a vae/ subfolder); "stock" keeps the model's own.
    vae: dict[str, str] = Field(default_factory=dict)
    # SDXL's stock VAE overflows to NaN (black images) in float16: SDXL models rendering in float16 decode with
    # this fp16-safe VAE unless `vae` names another for them; None keeps the stock one (upcast to float32).
    sdxl_fp16_vae: str | None = "madebyollin/sdxl-vae-fp16-fix"
    vae_force_upcast: bool | None = None  # decode in float32 whatever the VAE's config says; None: its config
    # Live previews from a tiny autoencoder (diffusers AutoencoderTiny, e.g. madebyollin/taesd for SD 1.x/2.x,
    # madebyollin/taesdxl for SDXL), by model name or family: a Hub repo or folder. Others use the linear map.
    live_preview_autoencoder: dict[str, str] = Field(default_factory=dict)

    @property
    def model_memory_budget_bytes(self) -> int:
        """The budget in bytes; 0 when there is none."""
        return int(self.model_memory_budget_gb * 2**30)

    @field_validator("model_paths")
    @classmethod
    def _catalog_names(cls, value: dict[str, Path]) -> dict[str, Path]:
        """Keys are catalog names or aliases of diffusers models, kept under their catalog name."""
        from core.errors import InvalidRequest
        from core.models.catalog import BackendKind, get_model

        named: dict[str, Path] = {}
        for name, folder in value.items():
            try:
                spec = get_model(name)
            except InvalidRequest as exc:
                raise ValueError(exc.message) from None
            if spec.backend is not BackendKind.DIFFUSERS:
                raise ValueError(
                    f"“{spec.name}” is an OpenAI model: it has no local weights to load, so remove it."
                )
            named[spec.name] = folder
        return named

    @field_validator("vae", "live_preview_autoencoder")
    @classmethod
    def _model_or_family(cls, value: dict[str, str]) -> dict[str, str]:
        """Keys are families ("sdxl") or catalog names or aliases of diffusers models (kept under their name)."""
        from core.errors import InvalidRequest
        from core.models.catalog import BackendKind, Family, get_model

        families = {family.value for family in Family if family is not Family.OPENAI}
        keyed: dict[str, str] = {}
        for key, source in value.items():
            if key.strip().lower() in families:
                keyed[key.strip().lower()] = source
                continue
            try:
                spec = get_model(key)
            except InvalidRequest as exc:
                raise ValueError(f"{exc.message[:-1]}, or a family: {', '.join(sorted(families))}.") from None
            if spec.backend is not BackendKind.DIFFUSERS:
                raise ValueError(f"“{spec.name}” is an OpenAI model: it has no VAE of ours, so remove it.")
            keyed[spec.name] = source
        return keyed


def for_model(mapping: Mapping[str, str], name: str, family: str) -> str | None:
    """A per-model setting's value for a model: under its catalog name, else under its family, else None."""
    return mapping.get(name, mapping.get(family))


class UpscalerSettings(Group):
    """The super-resolution model behind Upscale (Subtle) and (Creative), and the limits on what they make.

    `model` is a local file (.pth, .safetensors, .ckpt) of any architecture spandrel reads (ESRGAN / Real-ESRGAN,
    4x-UltraSharp, SwinIR, HAT, …) or a Hugging Face Hub path "owner/repo/filename"; None: no upscaler, and
    upscales fall back to a plain Lanczos resize plus a light img2img pass, and say so in the reply.
    Large images are upscaled in overlapping tiles of `tile` input pixels (each tile's outer `tile_overlap // 2`
    pixels are cut away), so memory stays bounded whatever the image size.
    """

    model: str | None = None
    tile: int = Field(default=512, ge=32, le=4096)  # input pixels per tile side
    tile_overlap: int = Field(default=32, ge=0)  # input pixels shared by neighbouring tiles
    max_output_side: int = Field(default=4096, ge=64)
    max_output_pixels: int = Field(default=4096 * 4096, ge=64 * 64)
    detail_overlap: int = Field(default=64, ge=0)  # pixels the Creative detail pass's tiles share, blended

    @model_validator(mode="after")
    def _overlap_fits(self) -> UpscalerSettings:
        if self.tile_overlap * 2 > self.tile:
            raise ValueError(
                f"IMAGEBOT_UPSCALER__TILE_OVERLAP ({self.tile_overlap}) must be at most half the tile "
                f"({self.tile})"
            )
        return self


class CaptionerSettings(Group):
    """/describe: an image → four prompt suggestions, from a local captioning model or OpenAI's vision model.

    `backend` "auto" uses a GPU worker's local captioner when one runs, else OpenAI when a key is set (as image
    generation falls back); "local" and "openai" use only that one.
    """

    backend: Literal["auto", "local", "openai"] = "auto"
    local_model: str | None = (
        None  # a transformers image-to-text model (Hub id or folder); None: no local one
    )
    openai_model: str = "gpt-4o-mini"
    max_new_tokens: int = Field(default=40, ge=4, le=200)
    timeout_s: float = Field(default=60.0, gt=0)
    images_charged: int = Field(default=1, ge=0, le=4)  # what one /describe takes from the daily image quota
