"""What a finished job leaves for operators besides its reply: the day's numbers (/admin stats) and, for a
successful generation, one audit entry saying who made what, when, with which parameters, and what it cost.

The audit entry is written once per request, however often the job ran (retries, a lease that lapsed): a marker
key taken with SET NX decides.
"""

from __future__ import annotations

import logging

from core import metrics
from core.governance.admission import community_of
from core.governance.audit import AuditAction, AuditEntry
from core.governance.quotas import owner_id, paid_quote
from core.keys import GENERATED_KEY, USAGE_DAY_TTL_S
from core.models.pricing import Quote
from core.models.request import GenerationRequest
from core.models.result import EventKind, ResultEvent
from worker.context import WorkerContext

log = logging.getLogger(__name__)

MAX_PROMPT_CHARS = 500  # of the prompt kept in the audit entry


def paid(deps: WorkerContext, request: GenerationRequest, event: ResultEvent) -> Quote | None:
    """What OpenAI billed for this job's delivered images (None when it was not drawn there)."""
    if event.backend != "openai" or not event.images:
        return None
    try:
        quote = paid_quote(deps.settings.openai, request)
    except KeyError:  # settings check the table at start-up; a model priced nowhere is logged, not charged
        log.warning(
            "request %s: no price for %s in IMAGEBOT_OPENAI__PRICES", request.request_id, request.model
        )
        return None
    return Quote(quote.model, quote.quality, quote.size, quote.per_image_usd, len(event.images))


def parameters(request: GenerationRequest, event: ResultEvent) -> dict[str, str]:
    """The generation's parameters, as the audit entry keeps them."""
    details = {
        "prompt": request.prompt[:MAX_PROMPT_CHARS],
        "model": event.model or request.model,
        "backend": event.backend,
        "mode": str(request.mode),
        "size": f"{request.width}x{request.height}",
        "steps": str(request.steps),
        "guidance": f"{request.guidance:g}",
        "seeds": ",".join(str(seed) for seed in request.seeds),
        "images": str(len(event.images)),
    }
    if request.negative_prompt:
        details["negative_prompt"] = request.negative_prompt[:MAX_PROMPT_CHARS]
    if request.parent_id:
        details["parent"] = request.parent_id
    if event.cached:
        details["cached"] = "true"
    return details


async def record_job(deps: WorkerContext, request: GenerationRequest, event: ResultEvent) -> None:
    """Count the job in the day's numbers and audit a successful generation (once per request)."""
    quote = paid(deps, request, event)
    if quote is not None:
        metrics.PAID_FALLBACK_USD.inc(quote.total_usd)
    await deps.tally.job(event, quote.total_usd if quote else 0.0)
    if event.kind is not EventKind.DONE:
        return
    first = await deps.redis.set(
        GENERATED_KEY.format(request_id=request.request_id), "1", nx=True, ex=USAGE_DAY_TTL_S
    )
    if not first:
        log.info("request %s: its generation is audited already", request.request_id)
        return
    details = parameters(request, event) | (quote.details() if quote else {})
    await deps.audit.record(
        AuditEntry(
            actor=owner_id(request.requester),
            action=AuditAction.GENERATED,
            target=request.request_id,
            community=community_of(request.requester),
            details=details,
            actor_name=request.requester.display_name,
        )
    )
