"""The service's parts every other part stands on: its components, and who may act on a request.

The façade `core.service.ImagineService` is built in layers, one module each: this base, then `commands`
(/imagine), `edits` (every child of a finished image), `library` (styles, /describe, one's own results), and
`facade` (button presses), each subclassing the one before.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from arq.connections import ArqRedis

from core import metrics
from core.commands.derivation import (
    pick_image,
)
from core.commands.presses import PressWindow
from core.delivery.events import EventPublisher
from core.delivery.result_store import ResultStore
from core.errors import BackendUnavailable, InvalidRequest, NotAllowed, NotFound, UserError
from core.governance.admission import Admission, same_community
from core.governance.cancellation import Canceller
from core.governance.community import CommunityPolicy
from core.governance.describing import Describer
from core.governance.forget import Forgetter
from core.governance.library import Library
from core.governance.preferences import PreferenceStore
from core.governance.quotas import owner_id
from core.governance.styles import StyleBook
from core.jobs.cache import ResultCache
from core.jobs.queue import CancelOutcome, JobQueue
from core.jobs.routing import Router
from core.jobs.workers import WorkerRegistry
from core.models.catalog import BackendKind, get_model
from core.models.privileges import Privilege
from core.models.provenance import NoProvenanceReader, ProvenanceReader
from core.models.request import GenerationRequest, Requester
from core.models.result import EventKind, ResultEvent, StoredImage
from core.models.verdict import PromptModerator
from core.settings import Settings
from core.storage.protocol import ImageStore

SourceFetcher = Callable[[], Awaitable[bytes]]
"""Downloads an upload's bytes; `imagine` calls it only after every check has passed."""

_P = ParamSpec("_P")
_R = TypeVar("_R")


def counts_refusals(method: Callable[_P, Awaitable[_R]]) -> Callable[_P, Awaitable[_R]]:
    """Count what the method refuses (a user error, or no generator to run it) in imagebot_refusals_total."""

    @functools.wraps(method)
    async def counted(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return await method(*args, **kwargs)
        except (UserError, BackendUnavailable) as exc:
            metrics.REFUSALS.labels(kind=exc.reason_code).inc()
            raise

    return counted


class ServiceBase:
    def __init__(
        self,
        redis: ArqRedis,
        settings: Settings,
        store: ImageStore,
        moderator: PromptModerator,
        *,
        provenance: ProvenanceReader | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.moderator = moderator
        retention = settings.retention
        self.queue = JobQueue(redis, ttl_s=retention.requests_s)
        self.events = EventPublisher(redis)
        self.cache = ResultCache(redis, ttl_s=retention.results_s)
        self.results = ResultStore(redis, ttl_s=retention.results_s)
        self.workers = WorkerRegistry(redis)
        self.router = Router(self.workers, cloud_enabled=settings.openai.enabled)
        self.admission = Admission(redis, settings, moderator)
        self.canceller = Canceller(redis, self.admission.quotas, retention)
        self.forgetter = Forgetter(redis, settings, store, self.canceller)
        self.presses = PressWindow(redis, self.queue)
        self.styles = StyleBook(redis, settings)
        self.library = Library(redis, store, provenance or NoProvenanceReader(), retention)
        self.describer = Describer(redis, settings, store, self.admission)
        self.preferences = PreferenceStore(redis)

    async def cancel(self, request_id: str, requester: Requester) -> CancelOutcome:
        """Cancel a queued request (one's own, or anyone's for a moderator)."""
        request = await self.queue.load(request_id)
        moderator_here = requester.privilege >= Privilege.MOD and same_community(request.requester, requester)
        if not (
            owner_id(requester) == owner_id(request.requester)
            or moderator_here
            or requester.privilege >= Privilege.OWNER
        ):
            raise NotAllowed(
                "Only the person who asked for it, or a moderator where it was asked, can cancel it."
            )
        return await self.canceller.cancel(request, requester)

    async def check_owner(self, request_id: str, requester: Requester) -> GenerationRequest:
        """The request, if `requester` may use its buttons (its owner, or anyone where the community allows)."""
        request = await self.queue.load(request_id)
        await self._authorize(request, requester)
        return request

    async def image(self, request_id: str, index: int, requester: Requester) -> StoredImage:
        """U1–U4: one finished image at full size, for whoever may press the result's buttons."""
        await self.check_owner(request_id, requester)
        result = await self.results.load(request_id)
        if result.kind is not EventKind.DONE:
            raise InvalidRequest("button", "That request has no images to show.")
        return pick_image(result, index)

    async def last_request(self, requester: Requester) -> str:
        """The user's most recent request id (for /cancel without an id)."""
        recent = await self.queue.recent(owner_id(requester), 1)
        if not recent:
            raise NotFound("You have no recent requests to cancel.")
        return recent[0]

    async def result(self, request_id: str) -> ResultEvent:
        return await self.results.load(request_id)

    # -- helpers --------------------------------------------------------------------------------------------

    async def check_prompt(self, prompt: str, negative: str, requester: Requester) -> None:
        await self.admission.check_prompt(prompt, negative, requester)

    async def _parent(
        self, parent_id: str, requester: Requester
    ) -> tuple[GenerationRequest, ResultEvent, CommunityPolicy]:
        parent = await self.queue.load(parent_id)
        policy = await self._authorize(parent, requester)
        result = await self.results.load(parent_id)
        if result.kind is not EventKind.DONE:
            raise InvalidRequest("button", "That request has no images to work from.")
        await self.check_prompt(parent.prompt, parent.negative_prompt, requester)
        return parent, result, policy

    async def _authorize(self, request: GenerationRequest, requester: Requester) -> CommunityPolicy:
        """May `requester` use this request's buttons? Its owner may; others only in the same community, when
        that community lets everyone press. Returns the policy of the presser's community (bans, pauses apply)."""
        return await self._authorize_for(request.requester, requester)

    async def _authorize_for(self, owner: Requester, requester: Requester) -> CommunityPolicy:
        policy = await self.admission.admit(requester)
        if owner_id(requester) == owner_id(owner):
            return policy
        if same_community(owner, requester) and policy.buttons == "everyone":
            return policy
        raise NotAllowed("Only the person who asked for these images can use their buttons.")

    def _local_model(self, model: str) -> str:
        """Children of a cloud result are refined by the default local model (OpenAI can't do img2img here)."""
        if get_model(model).backend is BackendKind.OPENAI:
            return self.settings.default_model
        return model
