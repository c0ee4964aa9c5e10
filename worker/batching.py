"""Micro-batching: compatible requests waiting for the device share one pipeline call.

Which jobs: only those this worker already holds. arq hands a worker the lowest scores of the fair queue
(core.jobs.fairness), up to max_jobs at once, so every request here was already released by the fair queue and a
batch never takes a job out of its turn; it only lets jobs the worker holds anyway share the device.

What may share a call (`batch_key`): text-to-image requests (and rerolls) of one model, size, step count,
guidance, sampler and set of LoRAs, with no ControlNet — only prompts, negative prompts and seeds differ, and
each of those is per image.

How: every request joins the line in arrival order and queues one turn for the device (worker.device.DeviceGuard,
first come first served). The turn that gets the device takes the oldest request still waiting and the compatible
ones waiting behind it, up to the model's batch size in images, and renders them in one call with one seeded
generator per image; a turn that finds its request already rendered gives the device straight back.

Same seed, same bytes: the noise of image i comes from generator i only. The sums inside the model are not
bit-identical at another batch size (oneDNN and BLAS pick kernels and accumulation order by batch size; on the
tiny model the float pixels differ by about 1e-6), far below one step of 8-bit colour, so the PNG bytes match
(tests/worker/test_batching.py).

Isolation: each request keeps its own job — progress, result, refund, retry, cancellation and lease. A batch
whose call fails fails nobody: each of its requests renders again alone, so only a request that fails alone fails
(and is retried with its own tries). A request cancelled while waiting leaves the line; one cancelled while its
batch renders just gets nothing, and the call stops early only once every request in it is gone.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from PIL import Image

from core.models.request import GenerationRequest, Mode
from core.settings import WorkerSettings
from worker.backend import ProgressCallback
from worker.device import DeviceGuard, Interruption

log = logging.getLogger(__name__)

BatchKey = tuple[Any, ...]
# Builds the blocking call that renders `requests` together (every image, in order) and returns the images and
# the call's seconds; the progress callback is the batch's, reported once per step.
BatchCall = Callable[
    [tuple[GenerationRequest, ...], ProgressCallback],
    Callable[[Interruption], tuple[list[Image.Image], float]],
]


def batch_key(request: GenerationRequest) -> BatchKey | None:
    """Requests with equal keys can share one pipeline call; None: this one renders alone."""
    text_only = request.mode in (Mode.TXT2IMG, Mode.REROLL) and request.source_image is None
    if not text_only or request.control is not None:
        return None
    return (
        request.model,
        request.width,
        request.height,
        request.steps,
        request.guidance,
        request.sampler,
        request.loras,
    )


def batch_size(settings: WorkerSettings, model: str) -> int:
    """Images per call for `model` (its own setting, else the worker's); 1 means no batching."""
    return settings.batch_max_images_per_model.get(model, settings.batch_max_images)


def batch_arguments(requests: Sequence[GenerationRequest], negatives: bool) -> dict[str, Any]:
    """Pipeline arguments that give every image of every request its own prompt (and negative prompt)."""
    arguments: dict[str, Any] = {
        "prompt": [r.prompt for r in requests for _ in r.seeds],
        "num_images_per_prompt": 1,
    }
    if negatives:  # "" is what the pipelines use for no negative prompt, so requests with and without mix
        arguments["negative_prompt"] = [r.negative_prompt for r in requests for _ in r.seeds]
    else:
        arguments.pop("negative_prompt", None)
    return arguments


@dataclass(frozen=True)
class Rendered:
    images: list[Image.Image]  # this request's, in seed order
    compute_s: float  # the whole call's seconds
    batched_with: int  # requests in the call, this one included


@dataclass(eq=False)
class _Waiting:
    request: GenerationRequest
    key: BatchKey
    on_progress: ProgressCallback | None
    result: asyncio.Future[Rendered | None]  # None: the batch failed, render alone
    batch: _Batch | None = None
    gone: bool = False  # its job stopped waiting (cancelled)


@dataclass(eq=False)
class _Batch:
    members: list[_Waiting] = field(default_factory=list)
    turn: asyncio.Future[Any] | None = None


class Batcher:
    """The line of batchable requests in front of one device (one per DiffusersBackend)."""

    def __init__(
        self,
        device: DeviceGuard,
        call_for: BatchCall,
        max_images: Callable[[str], int],
        limit_s: float | None,
        window_s: float = 0.0,
    ) -> None:
        self.device = device
        self.call_for = call_for
        self.max_images = max_images
        self.limit_s = limit_s
        self.window_s = window_s
        self._line: list[_Waiting] = []
        self.calls = 0  # pipeline calls made, and the requests they rendered (for logs and tests)
        self.rendered = 0

    async def render(self, request: GenerationRequest, on_progress: ProgressCallback | None) -> Rendered:
        """Render `request`, with whatever compatible requests wait beside it when the device frees."""
        key = batch_key(request)
        if key is None:
            raise ValueError(f"request {request.request_id} cannot be batched")
        waiting = _Waiting(request, key, on_progress, asyncio.get_running_loop().create_future())
        idle = not self._line and not self.device.busy
        self._line.append(waiting)
        self._queue_turn(delay=self.window_s if idle else 0.0)
        try:
            rendered = await waiting.result
        except asyncio.CancelledError:
            self._leave(waiting)
            raise
        if rendered is not None:
            return rendered
        log.info("request %s: its batch failed; rendering it alone", request.request_id)
        return await self._alone(request, on_progress)

    async def _alone(self, request: GenerationRequest, on_progress: ProgressCallback | None) -> Rendered:
        call = self.call_for((request,), on_progress or _no_progress)
        images, seconds = await self.device.run(call, self.limit_s)
        return Rendered(images, seconds, 1)

    def _leave(self, waiting: _Waiting) -> None:
        waiting.gone = True
        if waiting in self._line:
            self._line.remove(waiting)
        batch = waiting.batch
        if batch is not None and batch.turn is not None and all(m.gone for m in batch.members):
            batch.turn.cancel()  # nobody waits for this call any more: free the device at its next step

    def _queue_turn(self, delay: float) -> None:
        batch = _Batch()
        batch.turn = asyncio.ensure_future(self._turn(batch, delay))
        batch.turn.add_done_callback(partial(self._settle, batch))

    async def _turn(self, batch: _Batch, delay: float) -> tuple[list[Image.Image], float] | None:
        if delay:
            await asyncio.sleep(delay)  # an idle device waits a moment for companions
        return await self.device.run_prepared(partial(self._prepare, batch), self.limit_s)

    def _prepare(self, batch: _Batch) -> Callable[[Interruption], tuple[list[Image.Image], float]] | None:
        """On the device's turn: take the oldest waiting request and the compatible ones behind it."""
        if not self._line:
            return None  # an earlier turn took this turn's request along
        leader = self._line[0]
        room = max(self.max_images(leader.request.model), leader.request.n)
        members: list[_Waiting] = []
        for waiting in list(self._line):
            if waiting.key == leader.key and waiting.request.n <= room:
                members.append(waiting)
                room -= waiting.request.n
                self._line.remove(waiting)
        batch.members = members
        for member in members:
            member.batch = batch
        self.calls += 1
        self.rendered += len(members)
        if len(members) > 1:
            log.info(
                "batch of %d requests (%d images): %s",
                len(members),
                sum(m.request.n for m in members),
                " ".join(m.request.request_id for m in members),
            )
        progress = partial(_fan_out, tuple(members))
        return self.call_for(tuple(m.request for m in members), progress)

    def _settle(self, batch: _Batch, turn: asyncio.Future[Any]) -> None:
        """The call ended: each request gets its images; after a failure, each renders again alone."""
        members = [m for m in batch.members if not m.result.done()]
        if turn.cancelled():
            for member in members:
                member.result.cancel()
            return
        error = turn.exception()
        if error is not None:
            if len(batch.members) == 1:
                for member in members:
                    member.result.set_exception(error)
            else:
                log.warning("a batch of %d failed (%s); its requests render alone", len(batch.members), error)
                for member in members:
                    member.result.set_result(None)
            return
        outcome = turn.result()
        if outcome is None:
            return  # the turn found nothing to render
        images, seconds = outcome
        offset = 0
        for member in batch.members:
            count = member.request.n
            if not member.result.done():
                member.result.set_result(
                    Rendered(images[offset : offset + count], seconds, len(batch.members))
                )
            offset += count


def _fan_out(members: tuple[_Waiting, ...], step: int, total: int) -> None:
    """One step of a batch is one step of each of its requests still waiting."""
    for member in members:
        if member.on_progress is not None and not member.gone:
            member.on_progress(step, total)


def _no_progress(step: int, total: int) -> None:
    return None
