"""A user's own results: /history (paged), /info (how to make it again, and what the file says it is), and
deleting one's own result.

The owner's delete goes through the same takedown as a moderator's /admin delete (core.governance.takedown):
the files leave the public prefix unless another result still shows them, the cached result for the same
parameters is dropped, and the result leaves the owner's history. It is written to the audit log.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from arq.connections import ArqRedis

from core.commands.recipe import ResultInfo, command_line, png_parameters, recipe_notes
from core.delivery.delivery_log import DeliveryLog
from core.delivery.history import HistoryIndex, HistoryPage
from core.delivery.result_store import ResultStore
from core.errors import NotAllowed, NotFound, StorageError
from core.governance.admission import community_of, same_community
from core.governance.audit import AuditAction, AuditEntry, AuditLog
from core.governance.quotas import owner_id
from core.governance.takedown import Takedown, TakedownOutcome
from core.jobs.queue import JobQueue
from core.models.privileges import Privilege
from core.models.provenance import ProvenanceReader
from core.models.request import GenerationRequest, Requester
from core.models.result import EventKind, ResultEvent
from core.settings import RetentionSettings
from core.storage.protocol import ImageStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HistoryEntry:
    request: GenerationRequest
    result: ResultEvent

    @property
    def request_id(self) -> str:
        return self.request.request_id


@dataclass(frozen=True)
class History:
    page: HistoryPage
    entries: tuple[HistoryEntry, ...]

    def text(self) -> str:
        if not self.entries:
            return "You have no results yet (or they have expired). Make some with /imagine."
        lines = [f"Your results, page {self.page.number} of {self.page.pages}:"]
        for number, entry in enumerate(self.entries, start=self.page.start + 1):
            prompt = " ".join(entry.request.prompt.split())
            prompt = prompt if len(prompt) <= 60 else prompt[:59] + "…"
            lines.append(f"{number}. {prompt} · {len(entry.result.images)} image(s) · {entry.request_id}")
        return "\n".join(lines)


@dataclass(frozen=True)
class Deleted:
    request_id: str
    outcome: TakedownOutcome
    messages: tuple[dict[str, str], ...]  # where the result was posted (core.delivery.delivery_log)


class Library:
    def __init__(
        self,
        redis: ArqRedis,
        store: ImageStore,
        provenance: ProvenanceReader,
        retention: RetentionSettings | None = None,
    ) -> None:
        retention = retention or RetentionSettings()
        self.store = store
        self.provenance = provenance
        self.queue = JobQueue(redis, ttl_s=retention.requests_s)
        self.results = ResultStore(redis, ttl_s=retention.results_s)
        self.index = HistoryIndex(redis, ttl_s=retention.results_s)
        self.takedown = Takedown(redis, store, retention)
        self.deliveries = DeliveryLog(redis, ttl_s=retention.results_s)
        self.audit = AuditLog(redis, keep_s=retention.audit_s)

    async def history(self, requester: Requester, anchor: str | None = None, older: bool = True) -> History:
        """A page of `requester`'s own results, newest first: the first page, or the one next to `anchor`."""
        owner = owner_id(requester)
        if anchor is None:
            page = await self.index.page(owner)
        else:
            page = await self.index.page_around(owner, anchor, older)
        entries = []
        for request_id in page.request_ids:
            entry = await self._entry(request_id)
            if entry is None:  # expired or taken down meanwhile: the index forgets it
                await self.index.remove(owner, request_id)
                continue
            entries.append(entry)
        return History(page, tuple(entries))

    async def _entry(self, request_id: str) -> HistoryEntry | None:
        try:
            request = await self.queue.load(request_id)
            result = await self.results.load(request_id)
        except NotFound:
            return None
        if result.kind is not EventKind.DONE or not result.images:
            return None
        return HistoryEntry(request, result)

    async def info(self, request_id: str, requester: Requester) -> ResultInfo:
        """/info: the command that makes the result again, and what its stored file says it is."""
        request = await self.queue.load(request_id)
        self._may_read(request, requester)
        result = await self.results.load(request_id)
        if result.kind is not EventKind.DONE or not result.images:
            raise NotFound("That request has no images (any more), so there is nothing to show about it.")
        image = result.images[0]
        try:
            data = await self.store.get(image.key)
        except StorageError:
            log.warning("request %s: stored image %s unreadable for /info", request_id, image.key)
            data = None
        if data is None:
            parameters, provenance = None, "The stored file can't be read right now."
        else:
            parameters = await asyncio.to_thread(png_parameters, data)
            provenance = await self.provenance.describe(data)
        return ResultInfo(
            request_id,
            command_line(request, image.seed),
            recipe_notes(request, result),
            parameters,
            provenance,
        )

    async def delete_own(self, request_id: str, requester: Requester) -> Deleted:
        """The owner takes their own result down (moderators use /admin delete for other people's)."""
        request = await self.queue.load(request_id)
        if owner_id(request.requester) != owner_id(requester):
            raise NotAllowed(
                "Only the person who made a result can delete it; moderators can use /admin delete."
            )
        result = await self.results.load(request_id)
        if result.kind is not EventKind.DONE or not result.images:
            raise NotFound("That result has no images left to delete.")
        outcome = await self.takedown.remove(request, result, list(result.images))
        await self.index.remove(owner_id(requester), request_id)
        await self.audit.record(
            AuditEntry(
                actor=owner_id(requester),
                action=AuditAction.OWN_DELETE,
                target=request_id,
                community=community_of(requester),
                details={"files": str(outcome.deleted), "kept": str(outcome.kept)},
                actor_name=requester.display_name,
            )
        )
        messages = tuple(await self.deliveries.locations(request_id))
        log.info("request %s: deleted by its owner (%d files)", request_id, outcome.deleted)
        return Deleted(request_id, outcome, messages)

    @staticmethod
    def _may_read(request: GenerationRequest, requester: Requester) -> None:
        """Its owner, anyone in the community it was posted in, or the bot's owners may read how it was made."""
        if owner_id(request.requester) == owner_id(requester) or same_community(request.requester, requester):
            return
        if requester.privilege >= Privilege.OWNER:
            return
        raise NotAllowed("That result was made somewhere else, so I can't show how it was made here.")
