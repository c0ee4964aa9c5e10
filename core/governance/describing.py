"""/describe through the same gates as /imagine: bans and pauses, a checked image, the quota, the fair queue.

A describe takes settings.captioner.images_charged images from the quota (1 by default: small, but not free),
reserved atomically before the job is queued and refunded when it fails or is refused, so a refused describe
costs nothing. Nothing is charged before the image has been checked (a non-image, one too large, an image of a
result the image check withheld) and before a describer is known to be running.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from arq.connections import ArqRedis

from core.commands.derivation import pick_image, scoped_request_id
from core.commands.uploads import read_upload, store_upload
from core.delivery.result_store import ResultStore
from core.errors import InvalidRequest
from core.governance.admission import Admission
from core.governance.quotas import owner_id
from core.jobs.captions import CaptionJobs, caption_queue
from core.jobs.queue import JobQueue, Submission
from core.jobs.workers import WorkerRegistry
from core.models.describe import DescribeRequest
from core.models.request import Requester
from core.models.result import EventKind
from core.settings import Settings
from core.storage.protocol import ImageStore

log = logging.getLogger(__name__)

ImageSource = bytes | Callable[[], Awaitable[bytes]]


class Describer:
    def __init__(self, redis: ArqRedis, settings: Settings, store: ImageStore, admission: Admission) -> None:
        self.settings = settings
        self.store = store
        self.admission = admission
        self.jobs = CaptionJobs(redis)
        self.queue = JobQueue(redis, ttl_s=settings.retention.requests_s)
        self.results = ResultStore(redis, ttl_s=settings.retention.results_s)
        self.workers = WorkerRegistry(redis)

    async def describe(
        self,
        requester: Requester,
        *,
        image: ImageSource | None = None,
        result: tuple[str, int] | None = None,
        source_id: str | None = None,
        reply_to: dict[str, str] | None = None,
    ) -> Submission:
        """Queue a /describe of an upload (`image`: bytes or a fetcher, called once every check passed) or of
        image `index` of a finished result (`result`: (request id, index))."""
        if (image is None) == (result is None):
            raise InvalidRequest("image", "Send one picture to describe (attach it, or reply to it).")
        request_id = scoped_request_id(requester, source_id)
        await self.admission.admit(requester)
        key = await self._result_image(*result) if result is not None else None
        queue = await caption_queue(self.workers, self.settings)
        if await self.queue.known(request_id):  # a redelivered command: no new charge
            return Submission(request_id, queue, None, None, duplicate=True)
        charged = self.settings.captioner.images_charged
        await self.admission.check_headroom(requester, charged)
        upload = None
        if image is not None:
            data = image if isinstance(image, bytes) else await image()
            upload = read_upload(data, self.settings.limits.max_upload_pixels)
            key = upload.key
        assert key is not None
        request = DescribeRequest(
            request_id=request_id,
            image=key,
            requester=requester,
            reply_to=reply_to or {},
            source_id=result[0] if result is not None else None,
        )
        quotas = self.admission.quotas
        cost = self.settings.openai.describe_cost_usd if queue.endswith("cloud") else 0.0
        await quotas.reserve(request_id, requester, charged, cost)
        try:
            if upload is not None:
                await store_upload(self.store, upload)
            weight = await quotas.weight_of(requester)
            score = await self.admission.fair.score(queue, owner_id(requester), 1, weight)
            queued = await self.jobs.enqueue(request, queue, score)
        except BaseException:
            await quotas.refund(request_id)
            raise
        await self.queue.remember(owner_id(requester), request_id)
        position = await self.queue.position(request_id, queue)
        log.info("describe %s queued on %s (position %s)", request_id, queue, position)
        return Submission(request_id, queue, position, None, duplicate=not queued)

    async def _result_image(self, request_id: str, index: int) -> str:
        """The stored key of image `index` of a result; a withheld or deleted image is refused."""
        result = await self.results.load(request_id)
        if result.kind is not EventKind.DONE:
            raise InvalidRequest("image", "That request has no images to describe.")
        return pick_image(result, index).key
