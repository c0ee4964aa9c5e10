"""What a worker process holds for its jobs: clients opened once at start-up and closed at shutdown.

arq style: on_startup builds a WorkerContext and keeps it in ctx["imagebot"]; jobs read it from there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from arq.connections import ArqRedis

from core import constants as c
from core.delivery.events import EventPublisher
from core.delivery.result_store import ResultStore
from core.delivery.tally import DailyTally
from core.governance.audit import AuditLog
from core.governance.preferences import PreferenceStore
from core.governance.quotas import QuotaService
from core.governance.retention import RetentionKeeper
from core.jobs.cache import ResultCache
from core.jobs.fairness import FairScheduler
from core.jobs.queue import JobQueue
from core.models.catalog import BackendKind
from core.models.verdict import ImageModerator
from core.settings import Settings
from core.storage.protocol import ImageStore
from worker.backend import ImageBackend
from worker.captioner import Captioner
from worker.provenance import Provenance
from worker.threads import PostPool

T = TypeVar("T")

log = logging.getLogger(__name__)


def job_timeout_s(settings: Settings, queue: str) -> float:
    """How long one job may take on `queue`: the GPU setting, or every OpenAI attempt the SDK may make."""
    if queue == c.QUEUE_CLOUD:
        return settings.openai.timeout_s * (settings.openai.max_retries + 1) + 10
    # The job may first wait for the device while the worker's other jobs render (one model call at a time).
    return float(settings.worker.job_timeout_s * settings.worker.max_jobs)


@dataclass
class WorkerContext:
    settings: Settings
    queue_name: str
    redis: ArqRedis
    store: ImageStore
    backends: dict[BackendKind, ImageBackend]
    image_moderator: ImageModerator
    captioner: Captioner | None = None  # /describe on this queue (worker/captioner.py), when configured
    post: PostPool | None = None  # post-processing threads (worker.threads); None: asyncio's default executor
    job_timeout_s: float = field(init=False)
    queue: JobQueue = field(init=False)
    events: EventPublisher = field(init=False)
    results: ResultStore = field(init=False)
    cache: ResultCache = field(init=False)
    quotas: QuotaService = field(init=False)
    fair: FairScheduler = field(init=False)
    audit: AuditLog = field(init=False)
    tally: DailyTally = field(init=False)
    keeper: RetentionKeeper = field(init=False)
    provenance: Provenance = field(init=False)
    preferences: PreferenceStore = field(init=False)  # whether a user turned live previews off

    def __post_init__(self) -> None:
        self.job_timeout_s = job_timeout_s(self.settings, self.queue_name)
        retention = self.settings.retention
        self.queue = JobQueue(self.redis, ttl_s=retention.requests_s)
        self.events = EventPublisher(self.redis)
        self.results = ResultStore(self.redis, ttl_s=retention.results_s)
        self.cache = ResultCache(self.redis, ttl_s=retention.results_s)
        self.quotas = QuotaService(self.redis, self.settings.quotas)
        self.fair = FairScheduler(self.redis)
        self.audit = AuditLog(self.redis, keep_s=retention.audit_s)
        self.tally = DailyTally(self.redis, retention.stats_s)
        self.keeper = RetentionKeeper(self.store, self.redis, retention, self.settings.storage)
        self.provenance = Provenance(self.settings.provenance, self.settings.data_dir)
        self.preferences = PreferenceStore(self.redis)

    @property
    def cloud_enabled(self) -> bool:
        return self.settings.openai.enabled

    @property
    def is_cloud(self) -> bool:
        return self.queue_name == c.QUEUE_CLOUD

    async def cpu(self, function: Callable[..., T], /, *args: Any) -> T:
        """CPU-bound post-processing (encoding, watermarking, signing) off the event loop and off the model's
        cores: on the post-processing threads when the worker has them."""
        if self.post is None:
            return await asyncio.to_thread(function, *args)
        return await self.post.run(function, *args)

    def post_processing(self) -> contextlib.AbstractContextManager[None]:
        """Held around a job's checks and encodings: with turns on the cores, the model pauses until it ends."""
        return contextlib.nullcontext() if self.post is None else self.post.post_processing()

    async def close(self) -> None:
        await self.keeper.stop()
        for backend in self.backends.values():
            await backend.close()
        if self.captioner is not None:
            await self.captioner.close()
        await self.store.close()
        if self.post is not None:
            self.post.close()
