"""The local backend: renders requests with a diffusers pipeline from the ModelRegistry.

One pipeline call per request renders the whole batch, with one seeded generator per image, so image i
depends only on seed i. txt2img when there is no source image; otherwise img2img from the source resized
to the request's size: that one path serves img2img, variations and upscales (the job sets sizes and
strength). The call runs in a thread behind a lock, one model call at a time on the device, so the event
loop stays free for heartbeats, uploads and the next job's bookkeeping.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from PIL import Image

from core.errors import GenerationFailed, ImagebotError, InvalidRequest
from core.models.catalog import Family, ModelSpec
from core.models.request import GenerationRequest, Mode
from worker.backend import GeneratedImage, Generation, ProgressCallback
from worker.registry import LoadedModel, ModelRegistry, diffusers_spec

logger = logging.getLogger(__name__)

TINY_NOTE = "smoke-test model with random weights: it draws noise, not pictures"
SOURCE_MODES = (Mode.IMG2IMG, Mode.VARIATION, Mode.UPSCALE)
MAX_SEED = 2**64 - 1


def img2img_steps(steps: int, strength: float) -> int:
    """The steps to ask an img2img pipeline for so that at least one denoising step runs.

    diffusers' img2img runs only int(steps * strength) of the steps it is given (it skips the noisiest ones),
    and fails when that is 0, e.g. 2 steps at strength 0.3. A subtle variation or an upscale at low strength is
    a fair request, so the schedule is stretched until it holds one step rather than refusing the request.
    """
    effective = steps
    while int(effective * strength) < 1:
        effective += 1
    return effective


def validate(request: GenerationRequest, source: Image.Image | None) -> ModelSpec:
    """Every check that does not need the model, before any compute; InvalidRequest names the bad value."""
    spec = diffusers_spec(request.model)
    multiple = max(8, spec.size_multiple)
    for field, value in (("width", request.width), ("height", request.height)):
        if value % multiple:
            raise InvalidRequest(
                field, f"The {field} must be a multiple of {multiple} for {spec.name}; {value} is not."
            )
        if not spec.min_side <= value <= spec.max_side:
            raise InvalidRequest(
                field,
                f"The {field} must be between {spec.min_side} and {spec.max_side} pixels for {spec.name}; "
                f"{value} is not.",
            )
    if request.steps > spec.max_steps:
        raise InvalidRequest(
            "steps", f"{spec.name} takes at most {spec.max_steps} steps; {request.steps} is too many."
        )
    for seed in request.seeds:
        if not 0 <= seed <= MAX_SEED:
            raise InvalidRequest("seed", f"A seed must be between 0 and {MAX_SEED}; {seed} is not.")
    if request.mode in SOURCE_MODES and source is None:
        raise InvalidRequest("source_image", f"A {request.mode.value} needs a source image; none was given.")
    if request.mode is Mode.TXT2IMG and source is not None:
        raise InvalidRequest(
            "source_image", "Text-to-image takes no source image; drop the image or use img2img."
        )
    if source is not None:
        if not spec.supports_img2img:
            raise InvalidRequest("model", f"{spec.name} cannot start from an image; choose another model.")
        if request.strength is None:
            raise InvalidRequest("strength", "Starting from an image needs a strength between 0 and 1.")
    if request.negative_prompt and not spec.supports_negative:
        raise InvalidRequest(
            "negative_prompt", f"{spec.name} ignores negative prompts; remove --no or choose another model."
        )
    return spec


class DiffusersBackend:
    """ImageBackend on local diffusers models, kept warm by a ModelRegistry."""

    name = "diffusers"

    def __init__(self, registry: ModelRegistry) -> None:
        self.registry = registry
        # One model call at a time on the device: two concurrent calls only share (and may exhaust) its memory.
        self._lock = asyncio.Lock()

    async def generate(
        self,
        request: GenerationRequest,
        source: Image.Image | None,
        on_progress: ProgressCallback | None = None,
    ) -> Generation:
        spec = validate(request, source)
        await self._lock.acquire()
        try:
            loaded = self.registry.get(spec.name)
            if loaded is None:
                loaded = await asyncio.to_thread(self.registry.load, spec.name)
            started = time.perf_counter()
            rendering = asyncio.ensure_future(
                asyncio.to_thread(self._render, loaded, request, source, on_progress)
            )
        except BaseException:
            self._lock.release()
            raise
        # A thread cannot be stopped: if this job is cancelled (a timeout), the device stays locked until the
        # pipeline call really ends, so the next job never runs the same pipeline concurrently.
        rendering.add_done_callback(self._release)
        images = await asyncio.shield(rendering)
        compute_s = time.perf_counter() - started
        logger.info(
            "request %s: %d image(s) %dx%d with %s in %.2fs",
            request.request_id,
            len(images),
            request.width,
            request.height,
            spec.name,
            compute_s,
        )
        return Generation(
            images=tuple(
                GeneratedImage(image, seed) for image, seed in zip(images, request.seeds, strict=True)
            ),
            model=spec.name,
            backend=self.name,
            note=TINY_NOTE if spec.family is Family.TINY else None,
            compute_s=compute_s,
        )

    def _release(self, rendering: asyncio.Future[list[Image.Image]]) -> None:
        self._lock.release()
        if not rendering.cancelled():
            # Retrieved here, so a render whose caller was cancelled logs no "exception never retrieved".
            rendering.exception()

    async def close(self) -> None:
        async with self._lock:
            await asyncio.to_thread(self.registry.close)

    def _render(
        self,
        loaded: LoadedModel,
        request: GenerationRequest,
        source: Image.Image | None,
        on_progress: ProgressCallback | None,
    ) -> list[Image.Image]:
        """The blocking pipeline call (runs in a worker thread)."""
        import torch

        spec = loaded.spec
        logger.debug(
            "request %s: prompt %r, negative %r", request.request_id, request.prompt, request.negative_prompt
        )
        arguments: dict[str, Any] = {
            "prompt": request.prompt,
            "num_images_per_prompt": request.n,
            "guidance_scale": request.guidance,
            "output_type": "pil",
        }
        if request.negative_prompt and spec.supports_negative:
            arguments["negative_prompt"] = request.negative_prompt
        if source is None:
            pipeline = loaded.text2img
            arguments.update(num_inference_steps=request.steps, width=request.width, height=request.height)
            total = request.steps
        else:
            pipeline = loaded.img2img
            strength = float(request.strength or 1.0)
            steps = img2img_steps(request.steps, strength)
            resized = source.convert("RGB").resize((request.width, request.height), Image.Resampling.LANCZOS)
            arguments.update(image=resized, strength=strength, num_inference_steps=steps)
            if spec.family is Family.FLUX:
                arguments.update(width=request.width, height=request.height)
            total = min(int(steps * strength), steps)
        if on_progress is not None:
            progress = on_progress

            def on_step_end(pipe: Any, step: int, timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
                progress(step + 1, int(getattr(pipe, "num_timesteps", total) or total))
                return tensors

            arguments["callback_on_step_end"] = on_step_end
        arguments["generator"] = [
            torch.Generator(device=loaded.generator_device).manual_seed(seed) for seed in request.seeds
        ]
        try:
            with torch.inference_mode():
                output = pipeline(**arguments)
        except ImagebotError:
            raise  # e.g. a cancellation raised by the progress callback: the job knows what it means
        except torch.OutOfMemoryError as exc:
            if loaded.device == "cuda":
                torch.cuda.empty_cache()
            raise GenerationFailed(
                f"The GPU ran out of memory rendering {request.n} image(s) at {request.width}×{request.height}. "
                "Try fewer images or a smaller size."
            ) from exc
        except Exception as exc:
            logger.exception("request %s: the %s pipeline failed", request.request_id, spec.name)
            raise GenerationFailed(
                f"The {spec.name} model failed while rendering ({type(exc).__name__})."
            ) from exc
        images: list[Image.Image] = list(output.images)
        if len(images) != request.n:
            raise GenerationFailed(
                f"The {spec.name} model returned {len(images)} images instead of {request.n}."
            )
        return images
