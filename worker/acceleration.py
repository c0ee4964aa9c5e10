"""The speed switches a loaded pipeline gets from WorkerSettings, each reported at start-up.

- SDPA attention: torch 2's scaled_dot_product_attention is what diffusers uses by default; `attention_slicing`
  trades speed for memory on small cards.
- `channels_last`: the UNet's (and VAE's) weights in NHWC, faster convolutions on tensor cores.
- `vae_tiling` / `vae_slicing`: decode large images tile by tile, and a batch image by image, in bounded memory.
- `cpu_offload`: keep each component on the CPU until it runs (cards too small for the whole model).
- `batch_invariant`: on a CPU worker, a batched image has the same bytes as the same request alone
  (worker/invariance.py).
- `compile`: torch.compile of the UNet, opt-in; its compilation happens in a warm-up render at start-up, never in
  the first user's job.

On a CPU worker the GPU-only switches are skipped (and say so); none of them changes which seed gives which image
beyond float rounding.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from core.models.catalog import ModelSpec
from core.settings import WorkerSettings
from worker.invariance import describe as describe_invariance

log = logging.getLogger(__name__)


def accelerate(pipeline: Any, spec: ModelSpec, settings: WorkerSettings, device: str) -> list[str]:
    """Apply the configured switches to a freshly loaded pipeline (before it is moved to its device when
    offloading); returns what was switched on, for the start-up log."""
    import torch

    switches: list[str] = []
    if hasattr(torch.nn.functional, "scaled_dot_product_attention"):
        switches.append("sdpa attention")  # diffusers' default attention processor in torch 2
    gpu = device == "cuda"
    if settings.attention_slicing:
        pipeline.enable_attention_slicing()
        switches.append("attention slicing")
    if settings.channels_last:
        for name in ("unet", "transformer", "vae"):
            module = getattr(pipeline, name, None)
            if module is not None:
                module.to(memory_format=torch.channels_last)
        switches.append("channels-last")
    vae = getattr(pipeline, "vae", None)
    if settings.vae_tiling and vae is not None:
        vae.enable_tiling()
        switches.append("vae tiling")
    if settings.vae_slicing and vae is not None:
        vae.enable_slicing()
        switches.append("vae slicing")
    if settings.cpu_offload:
        if gpu:
            pipeline.enable_model_cpu_offload()
            switches.append("model cpu offload")
        else:
            log.warning("cpu_offload is for GPUs; %s runs on %s, so it is off", spec.name, device)
    invariance = describe_invariance(settings, device)
    if invariance:
        switches.append(invariance)
    if settings.compile:
        denoiser = "unet" if getattr(pipeline, "unet", None) is not None else "transformer"
        setattr(pipeline, denoiser, torch.compile(getattr(pipeline, denoiser), mode=settings.compile_mode))
        switches.append(f"torch.compile ({settings.compile_mode})")
    return switches


def warm_up(pipeline: Any, spec: ModelSpec) -> float:
    """One render at the model's native size, so compilation (and lazy CUDA set-up) happens now; its seconds."""
    import torch

    started = time.perf_counter()
    with torch.inference_mode():
        pipeline(
            "warm up",
            num_inference_steps=2,
            width=spec.native_width,
            height=spec.native_height,
            generator=torch.Generator().manual_seed(0),
            output_type="pil",
        )
    return time.perf_counter() - started
