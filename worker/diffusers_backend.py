"""The local backend: renders requests with a diffusers pipeline from the ModelRegistry.

One pipeline call per request renders the whole batch, with one seeded generator per image, so image i
depends only on seed i. txt2img when there is no source image; otherwise img2img from the source resized
to the request's size: that one path serves img2img, variations and upscales (the job sets sizes and
strength). The call runs in a thread behind a DeviceGuard, one model call at a time on the device, so the
event loop stays free for heartbeats, uploads and the next job's bookkeeping; its step callback stops the
pipeline at the first step past the time limit (or once the job awaiting it is cancelled).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Executor
from contextlib import ExitStack, contextmanager
from functools import partial
from typing import TYPE_CHECKING, Any

from PIL import Image

from core.errors import GenerationFailed, ImagebotError, InvalidRequest, TimeLimitExceeded
from core.models.catalog import Family, ModelSpec
from core.models.request import GenerationRequest, Mode
from core.settings import AdapterSettings, UpscalerSettings, WorkerSettings
from worker.adapters import LoraAdapters
from worker.backend import GeneratedImage, Generation, PreviewSink, ProgressCallback
from worker.batching import Batcher, batch_arguments, batch_key, batch_size
from worker.control import ControlNets
from worker.device import DeviceGuard, Interruption, RenderInterrupted, Turns
from worker.invariance import active as invariance_active
from worker.invariance import rows
from worker.latent_preview import PreviewDecoder, PreviewDecoders
from worker.registry import LoadedModel, ModelRegistry, diffusers_spec, hub_offline
from worker.samplers import sampler_for
from worker.schedule import MAX_SEED, img2img_steps
from worker.tiny import TINY_NOTE

if TYPE_CHECKING:
    from worker.edits import Editor

__all__ = ["MAX_SEED", "TINY_NOTE", "DiffusersBackend", "img2img_steps", "validate"]

logger = logging.getLogger(__name__)

SOURCE_MODES = (Mode.IMG2IMG, Mode.VARIATION, Mode.UPSCALE)


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
    if request.control is not None and source is not None:
        raise InvalidRequest("control", "--control starts from text, not from an image; drop one of the two.")
    if request.negative_prompt and not spec.supports_negative:
        raise InvalidRequest(
            "negative_prompt", f"{spec.name} ignores negative prompts; remove --no or choose another model."
        )
    return spec


class DiffusersBackend:
    """ImageBackend on local diffusers models, kept warm by a ModelRegistry.

    Each model call may take `time_limit_s` once it has the device (WorkerSettings.job_timeout_s by default):
    the step callback stops the pipeline at the first step past it, and the job fails with TimeLimitExceeded.
    """

    name = "diffusers"

    def __init__(
        self,
        registry: ModelRegistry,
        time_limit_s: float | None = None,
        adapters: AdapterSettings | None = None,
        upscaler: UpscalerSettings | None = None,
        executor: Executor | None = None,
        settings: WorkerSettings | None = None,
        turns: Turns | None = None,
    ) -> None:
        """`executor`: the device thread (worker.threads.model_executor); `settings`: the worker's (batching),
        the registry's by default; `turns`: how the device thread shares the cores (worker.threads.CoreShare)."""
        from worker.edits import Editor
        from worker.upscaler import load_upscaler

        self.registry = registry
        self.adapter_settings = adapters or AdapterSettings()
        self.loras: dict[str, LoraAdapters] = {}  # per model: the LoRAs loaded into it
        self.controls = ControlNets(self.adapter_settings.control, registry.device)
        self.time_limit_s = float(registry.settings.job_timeout_s) if time_limit_s is None else time_limit_s
        # One model call at a time on the device: two concurrent calls only share (and may exhaust) its memory.
        self.device = DeviceGuard(executor, turns)
        self.settings = settings = settings or registry.settings
        self.preview_decoders = PreviewDecoders(settings, hub_offline())  # per model (device thread)
        self.batcher = Batcher(
            self.device,
            self._batch_call,
            partial(batch_size, settings),
            self.time_limit_s,
            settings.batch_window_s,
        )
        limits = upscaler or UpscalerSettings()
        upscaler_model = load_upscaler(limits, registry.device)
        self.editor: Editor = Editor(
            registry, self.device, self.time_limit_s, limits, upscaler_model, self.adapted
        )
        registry.on_evict(self._forget)

    def _forget(self, name: str) -> None:
        """An evicted model takes what was built on it: its LoRA state, previews, inpaint and control pipelines."""
        self.loras.pop(name, None)
        self.preview_decoders.forget(name)
        self.controls.forget(name)
        self.editor.inpainters.forget(name)

    @contextmanager
    def adapted(self, loaded: LoadedModel, pipeline: Any, request: GenerationRequest) -> Iterator[None]:
        """`pipeline` with the request's sampler and LoRAs for one call (the edit modes' pipelines too)."""
        loras = self.loras.setdefault(loaded.spec.name, LoraAdapters(self.adapter_settings))
        with (
            sampler_for(pipeline, request.sampler),
            loras.applied(loaded.text2img, request.loras, request.request_id),
        ):
            yield

    async def generate(
        self,
        request: GenerationRequest,
        source: Image.Image | None,
        on_progress: ProgressCallback | None = None,
        *,
        control: Image.Image | None = None,
    ) -> Generation:
        if request.mode in self.editor.modes:  # inpaint, outpaint, upscale subtle/creative: worker/edits.py
            return await self.editor.generate(request, source, on_progress)
        spec = validate(request, source)
        if (request.control is None) != (control is None):
            raise InvalidRequest(
                "control", "--control needs its picture, and a picture for control needs --control."
            )
        if (
            self.registry.get(spec.name) is None
        ):  # evicted or never loaded: load it now, outside the time limit
            await self.device.run(lambda _: self.registry.load(spec.name))
        batched_with = 1
        if (
            source is None
            and control is None
            and batch_key(request) is not None
            and batch_size(self.settings, spec.name) > 1
        ):
            rendered = await self.batcher.render(request, on_progress)
            images, compute_s, batched_with = rendered.images, rendered.compute_s, rendered.batched_with
            control_map = None
        else:
            render = partial(
                self._render, request=request, source=source, control=control, on_progress=on_progress
            )
            images, control_map, compute_s = await self.device.run(
                partial(self._holding, spec.name, render), self.time_limit_s
            )
        logger.info(
            "request %s: %d image(s) %dx%d with %s in %.2fs%s",
            request.request_id,
            len(images),
            request.width,
            request.height,
            spec.name,
            compute_s,
            f" (a batch of {batched_with} requests)" if batched_with > 1 else "",
        )
        return Generation(
            images=tuple(
                GeneratedImage(image, seed) for image, seed in zip(images, request.seeds, strict=True)
            ),
            model=spec.name,
            backend=self.name,
            note=TINY_NOTE if spec.family is Family.TINY else None,
            compute_s=compute_s,
            control_image=control_map,
            batched_with=batched_with,
        )

    async def close(self) -> None:
        def close(_: Interruption) -> None:
            self.controls.close()
            self.registry.close()

        await self.device.run(close)
        self.device.close()

    def _batch_call(
        self, requests: tuple[GenerationRequest, ...], on_progress: ProgressCallback
    ) -> Callable[[Interruption], tuple[list[Image.Image], float]]:
        """The blocking call that renders `requests` (worker.batching) together: one image per seed, in order."""
        render = partial(
            self._render,
            request=requests[0],
            source=None,
            control=None,
            on_progress=on_progress,
            members=requests,
        )

        def images_and_seconds(interruption: Interruption) -> tuple[list[Image.Image], float]:
            images, _, seconds = self._holding(requests[0].model, render, interruption)
            return images, seconds

        return images_and_seconds

    def _holding(self, name: str, render: Callable[..., Any], interruption: Interruption) -> Any:
        """`render(loaded, interruption)` with the model held (in the device thread): no load evicts it meanwhile,
        and one evicted since the job began is loaded again."""
        with self.registry.using(name) as loaded:
            return render(loaded, interruption)

    def _render(
        self,
        loaded: LoadedModel,
        interruption: Interruption,
        *,
        request: GenerationRequest,
        source: Image.Image | None,
        control: Image.Image | None,
        on_progress: ProgressCallback | None,
        members: tuple[GenerationRequest, ...] = (),
    ) -> tuple[list[Image.Image], Image.Image | None, float]:
        """The blocking pipeline call (runs in the device's thread); returns the images, the control map it
        followed (--control) and its seconds. With `members` (a micro-batch led by `request`, its first; no
        control), every member's images in order."""
        import torch

        started = time.perf_counter()
        spec = loaded.spec
        logger.debug(
            "request %s: prompt %r, negative %r", request.request_id, request.prompt, request.negative_prompt
        )
        pipeline, arguments, total = _call_for(loaded, request, source)
        control_map = None
        if request.control is not None and control is not None:
            kind = request.control.kind
            control_map = self.controls.control_map(kind, control, request.width, request.height)
            pipeline = self.controls.pipeline(loaded, kind)
            arguments.update(image=control_map, controlnet_conditioning_scale=request.control.weight)
        seeds = request.seeds
        if members:  # compatible requests (worker.batching.batch_key): one prompt and one generator per image
            arguments.update(batch_arguments(members, spec.supports_negative))
            seeds = tuple(seed for member in members for seed in member.seeds)
        done = [0]
        # Live previews of single requests only: a micro-batch's progress is shared by its members.
        previews = self._previews(loaded, on_progress) if not members else None

        def on_step_end(pipe: Any, step: int, timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
            done[0] = step + 1
            steps = int(getattr(pipe, "num_timesteps", total) or total)
            if on_progress is not None:
                on_progress(step + 1, steps)
            if previews is not None:
                _live_preview(*previews, step + 1, steps, tensors.get("latents"))
            interruption.check()  # past the time limit, or nobody waits any more: stop before the next step
            return tensors

        arguments.update(callback_on_step_end=on_step_end, callback_on_step_end_tensor_inputs=["latents"])
        arguments["generator"] = [
            torch.Generator(device=loaded.generator_device).manual_seed(seed) for seed in seeds
        ]
        try:
            with self._for_one_call(loaded, pipeline, request), torch.inference_mode():
                output = pipeline(**arguments)
        except TimeLimitExceeded:
            logger.warning(
                "request %s: stopped after step %d of %d, past the %g s limit (%.2f s)",
                request.request_id,
                done[0],
                total,
                self.time_limit_s,
                time.perf_counter() - started,
            )
            raise
        except (ImagebotError, RenderInterrupted):
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
        if len(images) != len(seeds):
            raise GenerationFailed(
                f"The {spec.name} model returned {len(images)} images instead of {len(seeds)}."
            )
        return images, control_map, time.perf_counter() - started

    @contextmanager
    def _for_one_call(self, loaded: LoadedModel, pipeline: Any, request: GenerationRequest) -> Iterator[None]:
        """The request's sampler and LoRAs for this call only (the model's own come back after it) and, on a CPU
        worker that micro-batches the model, batch-invariant kernels (worker/invariance.py): alone or batched,
        the same kernels."""
        loras = self.loras.setdefault(loaded.spec.name, LoraAdapters(self.adapter_settings))
        with ExitStack() as scope:
            scope.enter_context(sampler_for(pipeline, request.sampler))
            scope.enter_context(loras.applied(loaded.text2img, request.loras, request.request_id))
            if invariance_active(self.settings, loaded.device, loaded.spec.name):
                scope.enter_context(rows(pipeline))
            yield

    def _previews(
        self, loaded: LoadedModel, on_progress: ProgressCallback | None
    ) -> tuple[PreviewSink, PreviewDecoder] | None:
        """Where this call's live previews go, and the model's preview decoder (worker/latent_preview.py), when
        both exist."""
        if not isinstance(on_progress, PreviewSink):
            return None
        decoder = self.preview_decoders.get(loaded)
        return None if decoder is None else (on_progress, decoder)


def _live_preview(sink: PreviewSink, mapping: PreviewDecoder, step: int, steps: int, latents: Any) -> None:
    """Hand `sink` a picture of the latents after `step` when one is due (not after the last step)."""
    if latents is None or step >= steps or latents.shape[1] != mapping.channels:
        return
    if sink.preview_due(step, steps):
        sink.preview(step, steps, mapping.image(latents))


def _call_for(
    loaded: LoadedModel, request: GenerationRequest, source: Image.Image | None
) -> tuple[Any, dict[str, Any], int]:
    """The pipeline to call (text-to-image, or image-to-image from `source`), its arguments, and its step count."""
    spec = loaded.spec
    arguments: dict[str, Any] = {
        "prompt": request.prompt,
        "num_images_per_prompt": request.n,
        "guidance_scale": request.guidance,
        "output_type": "pil",
    }
    if request.negative_prompt and spec.supports_negative:
        arguments["negative_prompt"] = request.negative_prompt
    if source is None:
        arguments.update(num_inference_steps=request.steps, width=request.width, height=request.height)
        return loaded.text2img, arguments, request.steps
    strength = float(request.strength or 1.0)
    steps = img2img_steps(request.steps, strength)
    resized = source.convert("RGB").resize((request.width, request.height), Image.Resampling.LANCZOS)
    arguments.update(image=resized, strength=strength, num_inference_steps=steps)
    if spec.family is Family.FLUX:
        arguments.update(width=request.width, height=request.height)
    return loaded.img2img, arguments, min(int(steps * strength), steps)
