"""The edit modes on a diffusers worker: inpaint, outpaint (zoom out, pan), upscale subtle and creative.

DiffusersBackend hands every request in EDIT_MODES to an `Editor`, which checks it before any compute (the
sizes come from core/commands/canvas.py, the same functions the chat side refuses with), then renders on the
backend's device, one model call at a time, under the same time limit:

- inpaint (worker/inpaint.py): the mask's white repainted, everything else the source's own pixels;
- outpaint (worker/outpaint.py): the source placed on the grown canvas, the border inpainted, the source pasted back;
- upscale subtle: the upscaler model alone (worker/upscaler.py), exactly factor × the source;
- upscale creative: the upscaler, then the tiled img2img detail pass (worker/detail.py) at the request's strength.

Without an upscaler model, upscales are a Lanczos resize plus the detail pass (lighter for Subtle), and the
result says so (PLAIN_RESIZE_NOTE, shown with the image).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from functools import partial
from typing import Any

from PIL import Image

from core.commands.canvas import inpaint_size, outpaint_placement, upscale_size
from core.errors import GenerationFailed, ImagebotError, InvalidRequest, TimeLimitExceeded
from core.models.catalog import Family, ModelSpec
from core.models.request import GenerationRequest, Mode
from core.settings import UpscalerSettings
from worker.backend import GeneratedImage, Generation, ProgressCallback
from worker.detail import detail_pass, tile_count
from worker.device import DeviceGuard, Interruption, RenderInterrupted
from worker.inpaint import InpaintPipelines, detach_mask, finish, inpaint_arguments
from worker.outpaint import place
from worker.registry import LoadedModel, ModelRegistry, diffusers_spec
from worker.schedule import MAX_SEED, steps_run
from worker.tiny import TINY_NOTE
from worker.upscaler import Upscaler

log = logging.getLogger(__name__)

# The request's sampler and LoRAs on a pipeline for one call (DiffusersBackend.adapted).
Adapted = Callable[[LoadedModel, Any, GenerationRequest], AbstractContextManager[None]]
EDIT_MODES = frozenset({Mode.INPAINT, Mode.OUTPAINT, Mode.UPSCALE_SUBTLE, Mode.UPSCALE_CREATIVE})
UPSCALES = frozenset({Mode.UPSCALE_SUBTLE, Mode.UPSCALE_CREATIVE})
PLAIN_RESIZE_NOTE = "Upscaled with a plain resize: no upscaler model is configured."
PLAIN_STRENGTH = 0.3  # the light img2img pass after a plain resize (the strength of the old upscale)


def output_size(
    request: GenerationRequest, spec: ModelSpec, source: Image.Image, limits: UpscalerSettings
) -> tuple[int, int]:
    """What the edit makes from `source` (InvalidRequest for what can't be made, as on the chat side)."""
    if request.mode is Mode.OUTPAINT:
        assert request.canvas is not None  # the request's own validator
        return outpaint_placement(spec, source.width, source.height, request.canvas).size
    if request.mode in UPSCALES:
        factor = int(request.upscale_factor or 2)
        return upscale_size(
            source.width, source.height, factor, limits.max_output_side, limits.max_output_pixels
        )
    return inpaint_size(source.width, source.height)


def validate_edit(
    request: GenerationRequest, source: Image.Image | None, limits: UpscalerSettings
) -> ModelSpec:
    """Every check that needs no model; InvalidRequest names the bad value."""
    spec = diffusers_spec(request.model)
    if source is None:
        raise InvalidRequest("source_image", f"A {request.mode.value} needs a source image; none was given.")
    if not spec.supports_img2img:
        raise InvalidRequest("model", f"{spec.name} cannot edit an image; choose another model.")
    if request.steps > spec.max_steps:
        raise InvalidRequest(
            "steps", f"{spec.name} takes at most {spec.max_steps} steps; {request.steps} is too many."
        )
    for seed in request.seeds:
        if not 0 <= seed <= MAX_SEED:
            raise InvalidRequest("seed", f"A seed must be between 0 and {MAX_SEED}; {seed} is not.")
    if request.control is not None:
        raise InvalidRequest(
            "control",
            f"--control can't guide an edit ({request.mode.value}); drop it, or use it on a new image.",
        )
    if request.mode is Mode.INPAINT:
        detach_mask(source)  # the mask rode in with the source
    made = output_size(request, spec, source, limits)
    if made != (request.width, request.height):
        raise InvalidRequest(
            "size",
            f"This {request.mode.value} of a {source.width}×{source.height} image makes {made[0]}×{made[1]}, "
            f"not the {request.width}×{request.height} asked for.",
        )
    return spec


class _Steps:
    """The pipelines' step callback over a whole edit: progress across every pass and tile, and the stop check."""

    def __init__(self, total: int, on_progress: ProgressCallback | None, interruption: Interruption) -> None:
        self.total = max(1, total)
        self.done = 0
        self.on_progress = on_progress
        self.interruption = interruption

    def __call__(self, pipe: Any, step: int, timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
        self.done += 1
        if self.on_progress is not None:
            self.on_progress(min(self.done, self.total), self.total)
        self.interruption.check()
        return tensors


class Editor:
    """Renders the edit modes for a DiffusersBackend, on its device guard and under its time limit."""

    modes = EDIT_MODES

    def __init__(
        self,
        registry: ModelRegistry,
        device: DeviceGuard,
        time_limit_s: float,
        limits: UpscalerSettings,
        upscaler: Upscaler | None,
        adapted: Adapted | None = None,
    ) -> None:
        self.registry = registry
        self.adapted: Adapted = adapted or (lambda loaded, pipeline, request: nullcontext())
        self.device = device
        self.time_limit_s = time_limit_s
        self.limits = limits
        self.upscaler = upscaler
        self.inpainters = InpaintPipelines()

    async def generate(
        self, request: GenerationRequest, source: Image.Image | None, on_progress: ProgressCallback | None
    ) -> Generation:
        spec = validate_edit(request, source, self.limits)
        assert source is not None
        model = None if request.mode is Mode.UPSCALE_SUBTLE and self.upscaler is not None else spec.name
        if model is not None and self.registry.get(model) is None:  # loaded outside the time limit
            await self.device.run(lambda _: self.registry.load(spec.name))
        started = time.perf_counter()
        render = partial(self._guarded, spec, model, request, source, on_progress)
        images = await self.device.run(render, self.time_limit_s)
        compute_s = time.perf_counter() - started
        log.info(
            "request %s: %s %dx%d with %s in %.2fs",
            request.request_id,
            request.mode.value,
            request.width,
            request.height,
            self.upscaler.name if model is None and self.upscaler else spec.name,
            compute_s,
        )
        notes = [TINY_NOTE] if spec.family is Family.TINY and model is not None else []
        if request.mode in UPSCALES and self.upscaler is None:
            notes.append(PLAIN_RESIZE_NOTE)
        return Generation(
            images=tuple(
                GeneratedImage(image, seed) for image, seed in zip(images, request.seeds, strict=True)
            ),
            model=spec.name,
            backend="diffusers",
            note=" ".join(notes) or None,
            compute_s=compute_s,
        )

    def _guarded(
        self,
        spec: ModelSpec,
        model: str | None,
        request: GenerationRequest,
        source: Image.Image,
        on_progress: ProgressCallback | None,
        interruption: Interruption,
    ) -> list[Image.Image]:
        """The blocking render (in the device's thread) with its model held, if it needs one (no load evicts it
        meanwhile), its failures turned into the job's errors."""
        import torch

        try:
            with (
                self.registry.using(model) if model is not None else nullcontext(None) as loaded,
                torch.inference_mode(),
            ):
                images = self._render(loaded, request, source, on_progress, interruption)
        except (ImagebotError, RenderInterrupted):
            raise  # a time limit, a cancellation, a refused input: the job knows what each means
        except torch.OutOfMemoryError as exc:
            if self.registry.device == "cuda":
                torch.cuda.empty_cache()
            raise GenerationFailed(
                f"The GPU ran out of memory making a {request.width}×{request.height} {request.mode.value}. "
                "Try a smaller size or factor."
            ) from exc
        except Exception as exc:
            log.exception("request %s: the %s %s failed", request.request_id, spec.name, request.mode.value)
            raise GenerationFailed(
                f"The {spec.name} model failed while editing ({type(exc).__name__})."
            ) from exc
        if len(images) != request.n:
            raise GenerationFailed(
                f"The {request.mode.value} made {len(images)} images instead of {request.n}."
            )
        return images

    def _render(
        self,
        loaded: LoadedModel | None,
        request: GenerationRequest,
        source: Image.Image,
        on_progress: ProgressCallback | None,
        interruption: Interruption,
    ) -> list[Image.Image]:
        if request.mode in UPSCALES:
            return self._upscale(loaded, request, source, on_progress, interruption)
        assert loaded is not None
        if request.mode is Mode.INPAINT:
            image, repaint = detach_mask(source)
        else:
            assert request.canvas is not None
            placement = outpaint_placement(loaded.spec, source.width, source.height, request.canvas)
            image, repaint = place(source, placement)
        return self._inpaint(loaded, request, image, repaint, on_progress, interruption)

    def _inpaint(
        self,
        loaded: LoadedModel,
        request: GenerationRequest,
        image: Image.Image,
        repaint: Image.Image,
        on_progress: ProgressCallback | None,
        interruption: Interruption,
    ) -> list[Image.Image]:
        import torch

        pipeline = self.inpainters.get(loaded)
        arguments = inpaint_arguments(loaded, request, image, repaint)
        steps = _Steps(steps_run(request.steps, arguments["strength"]), on_progress, interruption)
        arguments["callback_on_step_end"] = steps
        arguments["generator"] = [
            torch.Generator(device=loaded.generator_device).manual_seed(seed) for seed in request.seeds
        ]
        try:
            with self.adapted(loaded, pipeline, request):
                outputs = list(pipeline(**arguments).images)
        except TimeLimitExceeded:
            log.warning(
                "request %s: stopped after step %d of %d, past the time limit",
                request.request_id,
                steps.done,
                steps.total,
            )
            raise
        return finish(outputs, image, repaint)

    def _upscale(
        self,
        loaded: LoadedModel | None,
        request: GenerationRequest,
        source: Image.Image,
        on_progress: ProgressCallback | None,
        interruption: Interruption,
    ) -> list[Image.Image]:
        factor = int(request.upscale_factor or 2)
        if self.upscaler is not None:
            enlarged = self.upscaler.upscale(source, factor, interruption.check)
        else:
            enlarged = source.convert("RGB").resize(
                (source.width * factor, source.height * factor), Image.Resampling.LANCZOS
            )
        if request.mode is Mode.UPSCALE_SUBTLE and self.upscaler is not None:
            if on_progress is not None:
                on_progress(1, 1)
            return [enlarged for _ in request.seeds]  # super-resolution alone: one image, whatever the seed
        assert loaded is not None
        # Creative refines at its own strength; Subtle without an upscaler gets the old upscale's light pass.
        subtle = request.mode is Mode.UPSCALE_SUBTLE
        strength = PLAIN_STRENGTH if subtle else float(request.strength or PLAIN_STRENGTH)
        tiles = tile_count(loaded, enlarged.size, self.limits.detail_overlap)
        steps = _Steps(tiles * steps_run(request.steps, strength) * request.n, on_progress, interruption)
        with self.adapted(loaded, loaded.img2img, request):
            return [
                detail_pass(loaded, enlarged, request, strength, seed, self.limits.detail_overlap, steps)
                for seed in request.seeds
            ]
