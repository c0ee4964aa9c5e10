"""Which queue serves a request: the local GPU workers, or OpenAI when they can't.

Rule: an OpenAI model, or a user who asked for the cloud, goes to the cloud queue. Otherwise a local worker with
a live heartbeat and the model warm gets it; when there is none, OpenAI takes it if a key is configured (and the
mode is one OpenAI can do); otherwise the user hears that no generator is available.
"""

from __future__ import annotations

from dataclasses import dataclass

from core import constants as c
from core.errors import BackendUnavailable, InvalidRequest
from core.jobs.workers import WorkerRegistry, slots_on
from core.models.catalog import BackendKind, get_model
from core.models.request import GenerationRequest, Mode

CLOUD_MODES = (Mode.TXT2IMG, Mode.REROLL)


def cloud_capable(request: GenerationRequest) -> bool:
    """OpenAI can make it: a new image from text alone, with no LoRA, ControlNet or sampler of ours to honour."""
    return (
        request.mode in CLOUD_MODES
        and not request.loras
        and request.control is None
        and request.sampler is None
    )


@dataclass(frozen=True)
class Route:
    queue: str
    fallback: bool  # OpenAI serves a request meant for a local model
    slots: int = 1  # jobs the live workers on `queue` run at once, together (for the wait estimate)


class Router:
    def __init__(self, workers: WorkerRegistry, cloud_enabled: bool) -> None:
        self.workers = workers
        self.cloud_enabled = cloud_enabled

    async def route(self, request: GenerationRequest) -> Route:
        spec = get_model(request.model)
        wants_cloud = spec.backend is BackendKind.OPENAI or request.prefer_cloud
        if wants_cloud:
            if not self.cloud_enabled:
                field = "cloud" if request.prefer_cloud else "model"
                raise InvalidRequest(
                    field,
                    f"{spec.name if not request.prefer_cloud else 'The cloud generator'} "
                    "isn't set up on this bot (no OpenAI key). Please pick a local model.",
                )
            if not cloud_capable(request):
                raise InvalidRequest(
                    "model",
                    "OpenAI models can only make new images from text here; variations, upscales, LoRAs, "
                    "--control and --sampler need a local model.",
                )
            alive = await self.workers.alive()
            return Route(
                c.QUEUE_CLOUD, spec.backend is not BackendKind.OPENAI, slots_on(alive, c.QUEUE_CLOUD)
            )
        alive = await self.workers.alive()  # one read decides the queue and counts its slots
        if any(worker.queue == c.QUEUE_GPU and spec.name in worker.models for worker in alive):
            return Route(c.QUEUE_GPU, False, slots_on(alive, c.QUEUE_GPU))
        if self.cloud_enabled and cloud_capable(request):
            return Route(c.QUEUE_CLOUD, True, slots_on(alive, c.QUEUE_CLOUD))
        raise BackendUnavailable(
            f"No image generator with {spec.name} is running right now, so I can't start this. "
            "Please try again in a few minutes."
        )
