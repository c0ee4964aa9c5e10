"""Inpainting: repaint the white of a mask with diffusers' own inpaint pipeline, keep the rest of the source exactly.

The pipeline shares the loaded text-to-image weights through `from_pipe`, or, when the catalog names a dedicated
inpainting checkpoint for the model (ModelSpec.inpaint_repo_id), takes that checkpoint's UNet in place of the
text-to-image one (the text encoders and VAE are the family's own, so only a UNet is loaded). A checkpoint that
cannot be fetched is logged once and the shared weights inpaint instead.

A model renders at `render_size` (core/commands/canvas.py); its output is resized back to the source's size and
the source's own pixels are pasted in wherever the mask is black, so nothing the user kept is ever re-encoded
or resampled. Outpainting (worker/outpaint.py) is an inpaint of a grown canvas whose mask is the border.

The mask travels from render.py to the backend in the source's alpha channel (255 keep, 0 repaint: the
convention of OpenAI's image edits), so the ImageBackend seam stays one image.
"""

from __future__ import annotations

import io
import logging
import threading
from collections.abc import Callable
from typing import Any

from PIL import Image

from core.commands.canvas import render_size
from core.errors import InvalidRequest
from core.models.request import GenerationRequest
from worker.registry import LoadedModel
from worker.schedule import img2img_steps

log = logging.getLogger(__name__)

THRESHOLD = 128  # mask pixels at or above this (in grey) are repainted
StepCallback = Callable[[Any, int, Any, dict[str, Any]], dict[str, Any]]


def read_mask(data: bytes, size: tuple[int, int]) -> Image.Image:
    """The stored mask as a binary "L" image (255 repaint, 0 keep), checked against the source's size and for
    covering something but not everything; InvalidRequest("mask", …) says what to change."""
    with Image.open(io.BytesIO(data)) as stored:
        grey = stored.convert("L")
    if grey.size != size:
        raise InvalidRequest(
            "mask",
            f"The mask is {grey.width}×{grey.height} but the image is {size[0]}×{size[1]}; draw the mask at the "
            "image's own size.",
        )
    mask = grey.point(lambda value: 255 if value >= THRESHOLD else 0)
    low, high = mask.getextrema()
    if high == 0:
        raise InvalidRequest(
            "mask", "The region covers nothing, so there's nothing to repaint; mark the part to change."
        )
    if low == 255:
        raise InvalidRequest(
            "mask",
            "The region covers the whole image; to change all of it, use Vary (Strong) or a new prompt instead.",
        )
    return mask


def attach_mask(source: Image.Image, repaint: Image.Image) -> Image.Image:
    """The source with the mask in its alpha channel: 255 where it is kept, 0 where it is repainted."""
    carried = source.convert("RGB")
    carried.putalpha(repaint.point(lambda value: 255 - value))
    return carried


def detach_mask(source: Image.Image) -> tuple[Image.Image, Image.Image]:
    """(RGB source, binary repaint mask) from a source carrying its mask in alpha; InvalidRequest without one."""
    if source.mode != "RGBA":
        raise InvalidRequest("mask", "An inpaint needs a mask of the region to repaint; none was given.")
    keep = source.getchannel("A")
    return source.convert("RGB"), keep.point(lambda value: 0 if value >= THRESHOLD else 255)


def paste_back(generated: Image.Image, source: Image.Image, repaint: Image.Image) -> Image.Image:
    """`generated` where the mask is white, `source`'s own pixels, untouched, where it is black."""
    return Image.composite(generated.convert("RGB"), source.convert("RGB"), repaint)


class InpaintPipelines:
    """One inpaint pipeline per loaded model, built on first use and kept (thread-safe)."""

    def __init__(self) -> None:
        self._pipelines: dict[str, Any] = {}
        self._lock = threading.Lock()

    def get(self, loaded: LoadedModel) -> Any:
        with self._lock:
            pipeline = self._pipelines.get(loaded.spec.name)
            if pipeline is None:
                pipeline = _build(loaded)
                self._pipelines[loaded.spec.name] = pipeline
            return pipeline

    def forget(self, name: str) -> None:
        """Drop the model's pipeline (the model was evicted: its weights go with it)."""
        with self._lock:
            self._pipelines.pop(name, None)


def _build(loaded: LoadedModel) -> Any:
    from diffusers import AutoPipelineForInpainting

    components: dict[str, Any] = {}
    unet = _dedicated_unet(loaded)
    if unet is not None:
        components["unet"] = unet
    pipeline = AutoPipelineForInpainting.from_pipe(loaded.text2img, **components)
    pipeline.set_progress_bar_config(disable=True)
    log.info(
        "inpaint pipeline for %s: %s (%s)",
        loaded.spec.name,
        type(pipeline).__name__,
        loaded.spec.inpaint_repo_id if unet is not None else "the text-to-image weights",
    )
    return pipeline


def _dedicated_unet(loaded: LoadedModel) -> Any | None:
    """The catalog's inpainting checkpoint's UNet, on the model's device and dtype; None without one (or when it
    can't be loaded, which is logged: the shared weights still inpaint)."""
    repo = loaded.spec.inpaint_repo_id
    if repo is None:
        return None
    from diffusers import UNet2DConditionModel

    from worker.device import torch_dtype
    from worker.registry import hub_offline

    try:
        unet = UNet2DConditionModel.from_pretrained(
            repo, subfolder="unet", torch_dtype=torch_dtype(loaded.dtype), local_files_only=hub_offline()
        )
    except Exception as exc:  # not fetched, not a UNet: inpainting still works with the shared weights
        log.warning(
            "the inpainting checkpoint %s for %s could not be loaded (%s: %s); inpainting with its "
            "text-to-image weights instead",
            repo,
            loaded.spec.name,
            type(exc).__name__,
            exc,
        )
        return None
    return unet.to(loaded.device)


def inpaint_arguments(
    loaded: LoadedModel, request: GenerationRequest, image: Image.Image, repaint: Image.Image
) -> dict[str, Any]:
    """The inpaint pipeline's arguments for `image` (any size) at the model's render size, without generators
    or callback. The pipeline's mask is the binary mask resized, every partly covered pixel counted in, so the
    seam is repainted too (the paste-back keeps the exact edge)."""
    spec = loaded.spec
    width, height = render_size(spec, *image.size)
    strength = float(request.strength or 1.0)
    arguments: dict[str, Any] = {
        "prompt": request.prompt,
        "image": image.convert("RGB").resize((width, height), Image.Resampling.LANCZOS),
        "mask_image": repaint.resize((width, height), Image.Resampling.BILINEAR).point(
            lambda value: 255 if value > 0 else 0
        ),
        "width": width,
        "height": height,
        "strength": strength,
        "num_inference_steps": img2img_steps(request.steps, strength),
        "num_images_per_prompt": request.n,
        "guidance_scale": request.guidance,
        "output_type": "pil",
    }
    if request.negative_prompt and spec.supports_negative:
        arguments["negative_prompt"] = request.negative_prompt
    return arguments


def finish(outputs: list[Image.Image], image: Image.Image, repaint: Image.Image) -> list[Image.Image]:
    """Each render back at the image's size, with the kept pixels pasted back exactly."""
    return [
        paste_back(
            output if output.size == image.size else output.resize(image.size, Image.Resampling.LANCZOS),
            image,
            repaint,
        )
        for output in outputs
    ]
