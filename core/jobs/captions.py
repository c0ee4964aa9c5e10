"""/describe jobs on the queue: the DescribeRequest is stored as JSON under its id, the queue carries the id.

Which queue: a GPU worker whose heartbeat says it holds a captioner (constants.CAPTIONER), else OpenAI's
vision model on the cloud queue when a key is configured — the same fallback image generation has
(core.jobs.routing) — as settings.captioner.backend allows.
"""

from __future__ import annotations

from arq.connections import ArqRedis

from core import constants as c
from core.errors import BackendUnavailable, NotFound
from core.jobs.queue import enqueue_scored
from core.jobs.workers import WorkerRegistry
from core.keys import DESCRIBE_KEY, REQUEST_TTL_S
from core.models.describe import DescribeRequest
from core.settings import Settings

NO_DESCRIBER = (
    "No image describer is running right now, so I can't describe this. Please try again in a few minutes."
)


async def caption_queue(workers: WorkerRegistry, settings: Settings) -> str:
    """The queue that can describe an image now, or BackendUnavailable."""
    backend = settings.captioner.backend
    if backend in ("auto", "local") and await workers.serving(c.QUEUE_GPU, c.CAPTIONER):
        return c.QUEUE_GPU
    if backend in ("auto", "openai") and settings.openai.enabled:
        return c.QUEUE_CLOUD
    raise BackendUnavailable(NO_DESCRIBER)


class CaptionJobs:
    def __init__(self, redis: ArqRedis) -> None:
        self.redis = redis

    async def store(self, request: DescribeRequest) -> None:
        key = DESCRIBE_KEY.format(request_id=request.request_id)
        await self.redis.set(key, request.to_json(), ex=REQUEST_TTL_S, nx=True)

    async def load(self, request_id: str) -> DescribeRequest:
        raw = await self.redis.get(DESCRIBE_KEY.format(request_id=request_id))
        if raw is None:
            raise NotFound("That /describe is unknown or too old; please describe the image again.")
        return DescribeRequest.from_json(raw)

    async def enqueue(
        self, request: DescribeRequest, queue: str, score: float, job_id: str | None = None
    ) -> bool:
        """Store the request and queue its id; False when the job already existed."""
        await self.store(request)
        return await enqueue_scored(self.redis, c.JOB_DESCRIBE, request.request_id, queue, score, job_id)
