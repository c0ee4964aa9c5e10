"""The detail pass of Upscale (Creative), and of an upscale made without an upscaler model: img2img in tiles.

An upscaled image is larger than any model renders well, so it is refined one model-sized tile at a time (the
model's native side, on its size grid), neighbours overlapping by UpscalerSettings.detail_overlap and
feathered together (worker/tiling.py), each tile with its own generator seeded from the request's seed and
the tile's number, so the same request gives the same bytes. The VAE's own tiling is on for the pass, so a tile
larger than the VAE's sample size is encoded and decoded in pieces too; it is switched back afterwards, as the
VAE is shared with every other pipeline of the model.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from PIL import Image

from core.commands.canvas import grid_multiple
from core.models.catalog import Family
from core.models.request import GenerationRequest
from worker.registry import LoadedModel
from worker.schedule import img2img_steps
from worker.tiling import Mosaic, plan

SEED_SPACE = 2**64
StepCallback = Callable[[Any, int, Any, dict[str, Any]], dict[str, Any]]


def detail_tile(loaded: LoadedModel) -> int:
    """The side of a detail tile: the model's native side, on its size grid."""
    multiple = grid_multiple(loaded.spec)
    native = min(loaded.spec.native_width, loaded.spec.native_height)
    return max(multiple, native // multiple * multiple)


def tile_count(loaded: LoadedModel, size: tuple[int, int], overlap: int) -> int:
    """How many tiles the detail pass cuts a picture of `size` into."""
    tile = detail_tile(loaded)
    width, height = _padded(size, grid_multiple(loaded.spec))
    return len(plan(width, height, tile, min(overlap, tile // 2)))


def _padded(size: tuple[int, int], multiple: int) -> tuple[int, int]:
    return tuple(-(-side // multiple) * multiple for side in size)  # type: ignore[return-value]


@contextlib.contextmanager
def vae_tiling(pipeline: Any) -> Iterator[None]:
    """The pipeline's VAE with tiling on, put back as it was afterwards."""
    vae = getattr(pipeline, "vae", None)
    if vae is None or not hasattr(vae, "enable_tiling"):
        yield
        return
    was = bool(getattr(vae, "use_tiling", False))
    vae.enable_tiling()
    try:
        yield
    finally:
        if not was:
            vae.disable_tiling()


def detail_pass(
    loaded: LoadedModel,
    image: Image.Image,
    request: GenerationRequest,
    strength: float,
    seed: int,
    overlap: int,
    on_step_end: StepCallback,
) -> Image.Image:
    """`image` refined tile by tile with img2img at `strength`; same size out. `on_step_end` is the pipelines'
    step callback (progress, time limit, cancellation)."""
    import torch

    multiple = grid_multiple(loaded.spec)
    tile = detail_tile(loaded)
    width, height = _padded(image.size, multiple)
    pixels = np.asarray(image.convert("RGB"))
    padded = np.pad(pixels, ((0, height - image.height), (0, width - image.width), (0, 0)), mode="edge")
    mosaic = Mosaic(width, height, 3, "feather")
    arguments: dict[str, Any] = {
        "prompt": request.prompt,
        "strength": strength,
        "num_inference_steps": img2img_steps(request.steps, strength),
        "guidance_scale": request.guidance,
        "output_type": "np",
        "callback_on_step_end": on_step_end,
    }
    if request.negative_prompt and loaded.spec.supports_negative:
        arguments["negative_prompt"] = request.negative_prompt
    pipeline = loaded.img2img
    with vae_tiling(pipeline):
        for index, each in enumerate(plan(width, height, tile, min(overlap, tile // 2))):
            left, top, right, bottom = each.box
            crop = Image.fromarray(padded[top:bottom, left:right], "RGB")
            if loaded.spec.family is Family.FLUX:
                arguments.update(width=crop.width, height=crop.height)
            generator = torch.Generator(device=loaded.generator_device).manual_seed(
                (seed + index) % SEED_SPACE
            )
            output = pipeline(image=crop, generator=[generator], **arguments).images[0]
            mosaic.add(each, np.asarray(output, dtype=np.float32))
    refined = np.clip(mosaic.result() * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return Image.fromarray(refined[: image.height, : image.width], "RGB")
