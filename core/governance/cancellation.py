"""Cancelling a queued job, one way for everyone: the owner's /cancel and a moderator's /admin cancel.

A job that has not started is removed from its queue, its quota refunded, and a CANCELLED result published, so
the owner's "Queued…" message turns into "Cancelled"; a moderator cancelling someone else's job is audited. A job
that is already rendering is left to finish.
"""

from __future__ import annotations

from arq.connections import ArqRedis

from core import constants as c
from core.delivery.events import EventPublisher
from core.delivery.result_store import ResultStore
from core.governance.admission import community_of
from core.governance.audit import AuditAction, AuditEntry, AuditLog
from core.governance.quotas import QuotaService, owner_id
from core.jobs.queue import CancelOutcome, JobQueue, cloud_job_id
from core.models.request import GenerationRequest, Requester
from core.models.result import EventKind, ResultEvent
from core.settings import RetentionSettings


class Canceller:
    def __init__(
        self, redis: ArqRedis, quotas: QuotaService, retention: RetentionSettings | None = None
    ) -> None:
        retention = retention or RetentionSettings()
        self.queue = JobQueue(redis, ttl_s=retention.requests_s)
        self.quotas = quotas
        self.results = ResultStore(redis, ttl_s=retention.results_s)
        self.events = EventPublisher(redis)
        self.audit = AuditLog(redis, keep_s=retention.audit_s)

    async def cancel(self, request: GenerationRequest, actor: Requester) -> CancelOutcome:
        """How it went (CANCELLED, RUNNING or UNKNOWN). The caller has checked that `actor` may cancel `request`."""
        outcome = CancelOutcome.UNKNOWN
        jobs = ((c.QUEUE_GPU, request.request_id), (c.QUEUE_CLOUD, request.request_id),
                (c.QUEUE_CLOUD, cloud_job_id(request.request_id)))  # fmt: skip
        for queue, job_id in jobs:
            outcome = await self.queue.cancel(job_id, queue, request.request_id)
            if outcome != CancelOutcome.UNKNOWN:
                break
        if outcome != CancelOutcome.CANCELLED:
            return outcome
        by_owner = owner_id(actor) == owner_id(request.requester)
        event = ResultEvent(
            kind=EventKind.CANCELLED,
            request_id=request.request_id,
            requester=request.requester,
            reply_to=request.reply_to,
            model=request.model,
            reason_code="cancelled",
            message="Cancelled before it started."
            if by_owner
            else "Cancelled by a moderator before it started.",
        )
        await self.quotas.refund(request.request_id)
        await self.results.save(event)
        await self.events.publish(event)
        if not by_owner:
            await self.audit.record(
                AuditEntry(
                    actor=owner_id(actor),
                    action=AuditAction.CANCEL,
                    target=request.request_id,
                    community=community_of(request.requester),
                    details={"owner": owner_id(request.requester)},
                )
            )
        return outcome
