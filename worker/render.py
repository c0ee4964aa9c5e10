"""One request from pixels to a DONE event: generate, check each image, encode, store, describe.

The model call holds the device; encoding and uploading run afterwards in threads and concurrently, so with
max_jobs ≥ 2 the next job's model call overlaps this job's uploads.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, replace

from PIL import Image

from core.errors import PromptRejected
from core.governance.admission import community_of
from core.governance.audit import AuditAction, AuditEntry
from core.governance.quotas import owner_id
from core.models.catalog import BackendKind, get_model
from core.models.request import GenerationRequest
from core.models.result import EventKind, ResultEvent, StoredImage
from core.storage.protocol import PUBLIC_PREFIX, QUARANTINE_PREFIX
from moderation.image_check import ImageAction, ImagePolicy
from worker.backend import GeneratedImage, Generation, ProgressCallback
from worker.context import WorkerContext
from worker.inpaint import attach_mask, read_mask
from worker.live_preview import ProgressReporter
from worker.postprocess import encode_png, generation_parameters, make_grid, make_preview
from worker.provenance import Claim

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Checked:
    generated: GeneratedImage
    marked: Image.Image  # the pixels as stored: watermarked
    index: int
    png: bytes  # signed
    key_basis: bytes  # the unsigned encoding, which the storage key is taken from
    action: ImageAction
    categories: tuple[str, ...]


def png_parameters(request: GenerationRequest, generation: Generation, seed: int) -> dict[str, str]:
    """Everything needed to render this image again, and nothing else, so the same seed gives the same bytes."""
    parameters = generation_parameters(request, seed, generation.model, generation.backend)
    if generation.revised_prompt:
        parameters["revised_prompt"] = generation.revised_prompt
    if generation.note:
        parameters["note"] = generation.note
    return parameters


async def load_source(
    ctx: WorkerContext, request: GenerationRequest, timings: dict[str, float]
) -> bytes | None:
    """The stored bytes of the request's source image (None without one); records "source" seconds. Read once:
    the backend renders from it and the outputs' Content Credentials name it as their parent."""
    mark = time.monotonic()
    data = await ctx.store.get(request.source_image) if request.source_image else None
    timings["source"] = round(time.monotonic() - mark, 4)
    return data


async def generate_images(
    ctx: WorkerContext,
    request: GenerationRequest,
    source_data: bytes | None,
    on_progress: ProgressCallback | None,
    timings: dict[str, float],
) -> Generation:
    """Run the backend, from `source_data` when the request starts from an image; records "model" seconds."""
    kind = BackendKind.OPENAI if ctx.is_cloud else get_model(request.model).backend
    backend = ctx.backends.get(kind)
    if backend is None:
        raise RuntimeError(f"worker on {ctx.queue_name} has no {kind} backend")
    source = await asyncio.to_thread(_decode, source_data) if source_data is not None else None
    extra = {}
    if request.control is not None:  # the user's picture; the backend draws the control map from it
        extra["control"] = await asyncio.to_thread(_decode, await ctx.store.get(request.control.image))
    if source is not None and request.mask_image is not None:
        source = await _with_mask(ctx, request.mask_image, source)
    mark = time.monotonic()
    generation = await backend.generate(request, source, on_progress, **extra)
    elapsed = time.monotonic() - mark
    compute = elapsed if generation.compute_s is None else generation.compute_s
    timings["model"] = round(compute, 4)
    if generation.batched_with > 1:
        timings["batch"] = float(generation.batched_with)  # the model call was shared by this many requests
    timings["device_wait"] = round(max(0.0, elapsed - compute), 4)  # behind another job's model call
    return generation


async def _with_mask(ctx: WorkerContext, mask_key: str, source: Image.Image) -> Image.Image:
    """An inpaint's source carrying its mask (read from storage, checked against it) in its alpha channel."""
    data = await ctx.store.get(mask_key)
    mask = await asyncio.to_thread(read_mask, data, source.size)
    return attach_mask(source, mask)


def _decode(data: bytes) -> Image.Image:
    import io

    with Image.open(io.BytesIO(data)) as image:
        return image.convert("RGB")


async def _check(
    ctx: WorkerContext,
    request: GenerationRequest,
    generation: Generation,
    index: int,
    generated: GeneratedImage,
    parent: bytes | None,
) -> _Checked:
    marked = await ctx.cpu(ctx.provenance.watermark, generated.image)
    png = await ctx.cpu(encode_png, marked, png_parameters(request, generation, generated.seed))
    verdict = await ctx.image_moderator.check_image(png)
    policy = ImagePolicy.from_settings(ctx.settings.moderation)
    if request.image_policy is not None:  # the community's own choice
        policy = replace(policy, policy=request.image_policy)
    action = policy.decide(verdict, request.requester.age_restricted)
    if action is not ImageAction.DELIVER:
        log.info(
            "request %s: image %d %s (%s)", request.request_id, index, action, ",".join(verdict.categories)
        )
    claim = Claim(generation.model, f"{request.request_id}-{index + 1}.png", parent, generated.upstream)
    signed = await ctx.cpu(ctx.provenance.sign, png, "image/png", claim)
    return _Checked(generated, marked, index, signed, png, action, verdict.categories)


async def _store(
    ctx: WorkerContext,
    data: bytes,
    content_type: str,
    size: tuple[int, int],
    *,
    seed: int | None = None,
    index: int | None = None,
    spoiler: bool = False,
    key_basis: bytes | None = None,
) -> StoredImage:
    key = await ctx.store.put(data, content_type, prefix=PUBLIC_PREFIX, key_basis=key_basis)
    return StoredImage(
        key=key,
        url=await ctx.store.url(key),
        width=size[0],
        height=size[1],
        content_type=content_type,
        size_bytes=len(data),
        seed=seed,
        index=index,
        spoiler=spoiler,
    )


async def store_outputs(
    ctx: WorkerContext,
    request: GenerationRequest,
    generation: Generation,
    parent: bytes | None,
    started: float,
    timings: dict[str, float],
) -> ResultEvent:
    """Check, encode and store every image, then the grid and the chat preview; build the DONE event. `parent` is
    the source image the request started from, named in the outputs' Content Credentials."""
    mark = time.monotonic()
    claim = Claim(generation.model, f"{request.request_id}.png", parent)
    with ctx.post_processing():  # every CPU step in one turn (worker.threads.CoreShare); uploads after it
        checked = await asyncio.gather(
            *(
                _check(ctx, request, generation, index, generated, parent)
                for index, generated in enumerate(generation.images)
            )
        )
        shown = [item for item in checked if item.action is not ImageAction.QUARANTINE]
        withheld = [item for item in checked if item.action is ImageAction.QUARANTINE]
        composed = await _compose(ctx, shown, claim) if shown else None
    if withheld:
        await _quarantine(ctx, request, withheld)
    if composed is None:
        raise PromptRejected(
            "The images didn't pass the safety check, so I haven't posted them. You haven't been charged; "
            "please try a different prompt.",
            ("nsfw",),
            "image_refused",
        )
    spoiler = any(item.action is ImageAction.SPOILER for item in shown)
    files = [composed.preview] if composed.grid is None else [composed.preview, composed.grid]
    images, composites = await asyncio.gather(
        asyncio.gather(
            *(
                _store(
                    ctx,
                    item.png,
                    "image/png",
                    item.generated.image.size,
                    seed=item.generated.seed,
                    index=item.index,
                    spoiler=item.action is ImageAction.SPOILER,
                    key_basis=item.key_basis,
                )
                for item in shown
            )
        ),
        asyncio.gather(*(_store_file(ctx, file, spoiler) for file in files)),
    )
    preview, grid = composites[0], (composites[1] if len(composites) > 1 else None)
    control = await _control_map(ctx, request, generation)
    notes = [generation.note] if generation.note else []
    if withheld:
        numbers = ", ".join(str(item.index + 1) for item in withheld)
        notes.append(f"Image {numbers} didn't pass the safety check and was left out.")
    return ResultEvent(
        kind=EventKind.DONE,
        request_id=request.request_id,
        requester=request.requester,
        reply_to=request.reply_to,
        model=generation.model,
        backend=generation.backend,
        images=tuple(images),
        grid=grid,
        preview=preview,
        control=control,
        revised_prompt=generation.revised_prompt,
        fallback=generation.backend == BackendKind.OPENAI
        and get_model(request.model).backend is not BackendKind.OPENAI,
        message=" ".join(notes) or None,
        duration_s=round(time.monotonic() - started, 3),
        timings=timings | {"store": round(time.monotonic() - mark, 4)},
    )


async def _control_map(
    ctx: WorkerContext, request: GenerationRequest, generation: Generation
) -> StoredImage | None:
    """The control map the ControlNet followed, checked like any image and stored to show with the result."""
    if generation.control_image is None or request.control is None:
        return None
    parameters = {"software": "imagebot", "control": request.control.kind}
    png = await ctx.cpu(encode_png, generation.control_image, parameters)
    verdict = await ctx.image_moderator.check_image(png)
    policy = ImagePolicy.from_settings(ctx.settings.moderation)
    if policy.decide(verdict, request.requester.age_restricted) is not ImageAction.DELIVER:
        log.info(
            "request %s: the control map is not shown (%s)", request.request_id, ",".join(verdict.categories)
        )
        return None
    return await _store(ctx, png, "image/png", generation.control_image.size)


async def _quarantine(ctx: WorkerContext, request: GenerationRequest, withheld: list[_Checked]) -> None:
    """Keep withheld images under the private prefix (when configured) and audit the refusal."""
    quarantined: list[str] = []
    if ctx.settings.moderation.quarantine:
        quarantined = await asyncio.gather(
            *(ctx.store.put(item.png, "image/png", prefix=QUARANTINE_PREFIX) for item in withheld)
        )
    await ctx.audit.record(
        AuditEntry(
            actor="system",
            action=AuditAction.IMAGE_REFUSED,
            target=request.request_id,
            reason=",".join(sorted({category for item in withheld for category in item.categories})),
            community=community_of(request.requester),
            details={
                "user": owner_id(request.requester),
                "images": str(len(withheld)),
                "quarantine": " ".join(quarantined),
            },
        )
    )


@dataclass(frozen=True)
class _File:
    """An encoded, signed file ready to store, under the key of its unsigned encoding."""

    data: bytes
    content_type: str
    size: tuple[int, int]
    key_basis: bytes


@dataclass(frozen=True)
class _Composed:
    grid: _File | None  # only for more than one image
    preview: _File


async def _compose(ctx: WorkerContext, shown: list[_Checked], claim: Claim) -> _Composed:
    """The grid of the shown (watermarked) images, when there is more than one, and the chat-sized preview, both
    encoded and signed (CPU work only: storing them is the caller's)."""
    grid_image = await ctx.cpu(make_grid, [item.marked for item in shown])
    grid = None
    if len(shown) > 1:
        grid_png = await ctx.cpu(encode_png, grid_image, {"software": "imagebot"})
        signed_grid = await ctx.cpu(ctx.provenance.sign, grid_png, "image/png", claim)
        grid = _File(signed_grid, "image/png", grid_image.size, grid_png)
    fmt = ctx.settings.worker.preview_format
    preview_bytes = await ctx.cpu(make_preview, grid_image, ctx.settings.worker.preview_max_side, fmt)
    preview_size = await ctx.cpu(_size_of, preview_bytes)
    signed_preview = await ctx.cpu(ctx.provenance.sign, preview_bytes, f"image/{fmt}", claim)
    return _Composed(grid, _File(signed_preview, f"image/{fmt}", preview_size, preview_bytes))


async def _store_file(ctx: WorkerContext, file: _File, spoiler: bool) -> StoredImage:
    return await _store(
        ctx, file.data, file.content_type, file.size, spoiler=spoiler, key_basis=file.key_basis
    )


def _size_of(data: bytes) -> tuple[int, int]:
    import io

    with Image.open(io.BytesIO(data)) as image:
        return image.size


def progress_reporter(
    ctx: WorkerContext, request: GenerationRequest, min_interval_s: float = 1.0, previews: bool = True
) -> ProgressReporter:
    """A thread-safe progress callback that publishes at most one PROGRESS event per interval, and live
    previews (worker/live_preview.py) when the worker shows them and `previews` (the user's choice) is on."""
    return ProgressReporter(ctx, request, min_interval_s, previews)
