"""The `/admin` commands on a community and its requests (queue, cancel, pause, resume, block, policy, delete),
and what every admin command shares: the services, the audit record, the community and rank checks.

AdminService (admin.py) adds the dispatch and the commands on users; see its docstring for the grammar.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from arq.connections import ArqRedis

from core import constants as c
from core.commands.uploads import UPLOAD_MAX_BYTES, read_upload
from core.delivery.delivery_log import DeliveryLog
from core.delivery.result_store import ResultStore
from core.errors import InvalidRequest, NotAllowed
from core.governance.admin_arguments import USAGE, image_number
from core.governance.admin_reply import AdminReply, UserRef
from core.governance.admission import community_of, same_community
from core.governance.audit import AuditAction, AuditEntry, AuditLog
from core.governance.bans import BanList
from core.governance.cancellation import Canceller
from core.governance.community import CommunityStore, community_key
from core.governance.quotas import QuotaService, owner_id
from core.governance.styles import StyleBook
from core.governance.takedown import Takedown
from core.jobs.queue import CancelOutcome, JobQueue
from core.jobs.workers import WorkerRegistry
from core.models.privileges import Privilege, effective_privilege, require
from core.models.provenance import NoProvenanceReader, ProvenanceReader
from core.models.request import GenerationRequest, Requester
from core.settings import Settings
from core.storage.protocol import ImageStore, content_key


class TermStore(Protocol):
    """Per-community blocked terms (moderation.community_terms.CommunityBlocklist)."""

    async def add(self, community_id: str, term: str) -> str: ...

    async def remove(self, community_id: str, term: str) -> bool: ...

    async def list(self, community_id: str) -> list[str]: ...


class CommunityAdmin:
    def __init__(
        self,
        redis: ArqRedis,
        settings: Settings,
        store: ImageStore,
        terms: TermStore,
        quotas: QuotaService,
        provenance: ProvenanceReader | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.terms = terms
        self.quotas = quotas
        retention = settings.retention
        self.audit = AuditLog(redis, keep_s=retention.audit_s)
        self.bans = BanList(redis)
        self.communities = CommunityStore(redis)
        self.queue = JobQueue(redis, ttl_s=retention.requests_s)
        self.results = ResultStore(redis, ttl_s=retention.results_s)
        self.workers = WorkerRegistry(redis)
        self.deliveries = DeliveryLog(redis, ttl_s=retention.results_s)
        self.canceller = Canceller(redis, quotas, retention)
        self.takedown = Takedown(redis, store, retention)
        self.styles = StyleBook(redis, settings)
        self.provenance: ProvenanceReader = provenance or NoProvenanceReader()

    # -- shared checks ---------------------------------------------------------------------------------------

    @staticmethod
    def _args(args: list[str], command: str, least: int) -> None:
        if len(args) < least:
            raise InvalidRequest(command, f"Usage: /admin {USAGE[command]}")

    @staticmethod
    def _community(actor: Requester, command: str) -> str:
        if not actor.community_id:
            raise InvalidRequest(
                command, f"/admin {command} works in a group or server, not in a private chat."
            )
        return community_key(actor.platform, actor.community_id)

    def _level(self, requester: Requester) -> Privilege:
        """The privilege the front end computed, raised to OWNER for the owners in settings."""
        return effective_privilege(
            requester.platform, requester.user_id, requester.privilege, self.settings.owners
        )

    def _may_see(self, actor: Requester, request: GenerationRequest) -> bool:
        """A moderator sees requests made in their own community; only owners see across communities."""
        return self._level(actor) >= Privilege.OWNER or same_community(actor, request.requester)

    def _require_here(self, actor: Requester, request: GenerationRequest, action: str) -> None:
        """`actor` may act on `request`: made in their community, and theirs or by someone of lower rank."""
        if not self._may_see(actor, request):
            raise NotAllowed(
                f"That request was made in another community, so you can't {action} it from here."
            )
        asker = self._level(request.requester)
        if request.requester.user_id != actor.user_id and asker >= self._level(actor):
            raise NotAllowed(
                f"That request was made by someone whose rank ({asker.name.lower()}) is as high as yours "
                f"or higher, so you can't {action} it."
            )

    async def _record(
        self,
        actor: Requester,
        action: AuditAction,
        target: str = "",
        reason: str = "",
        target_name: str | None = None,
        **details: str,
    ) -> None:
        entry = AuditEntry(
            actor=owner_id(actor),
            action=action,
            target=target,
            reason=reason,
            community=community_of(actor),
            details=details,
            actor_name=actor.display_name,
            target_name=target_name,
        )
        await self.audit.record(entry)

    # -- commands --------------------------------------------------------------------------------------------

    async def _queue(self, args: list[str], actor: Requester, *_: object) -> AdminReply:
        lines = []
        for queue in (c.QUEUE_GPU, c.QUEUE_CLOUD):
            depth = await self.queue.depth(queue)
            workers = await self.workers.serving(queue)
            typical = await self.queue.typical_duration(queue)
            eta = (
                f", about {round(typical * depth / max(1, len(workers)))} s to clear"
                if typical and depth
                else ""
            )
            name = queue.rsplit(":", 1)[-1]
            lines.append(f"{name}: {depth} waiting, {len(workers)} worker(s){eta}")
            lines.extend(
                f"  {worker.worker_id}: {', '.join(worker.models)} ({worker.jobs_done} jobs done)"
                for worker in workers
            )
        return AdminReply.of("\n".join(lines))

    async def _cancel(self, args: list[str], actor: Requester, *_: object) -> AdminReply:
        self._args(args, "cancel", 1)
        request_id = args[0]
        request = await self.queue.load(request_id)
        self._require_here(actor, request, "cancel")
        outcome = await self.canceller.cancel(request, actor)
        if outcome == CancelOutcome.CANCELLED:
            return AdminReply.of(f"Cancelled {request_id} (owner ", UserRef.of(request.requester), ").")
        if outcome == CancelOutcome.RUNNING:
            return AdminReply.of(f"{request_id} is already rendering; it will finish.")
        return AdminReply.of(f"{request_id} isn't waiting in any queue (it may be done).")

    async def _pause(self, args: list[str], actor: Requester, *_: object) -> AdminReply:
        community = self._community(actor, "pause")
        await self.communities.pause(community, True)
        await self._record(actor, AuditAction.PAUSE, community, " ".join(args))
        return AdminReply.of("Image generation is paused here. /admin resume turns it back on.")

    async def _resume(self, args: list[str], actor: Requester, *_: object) -> AdminReply:
        community = self._community(actor, "resume")
        await self.communities.pause(community, False)
        await self._record(actor, AuditAction.RESUME, community)
        return AdminReply.of("Image generation is back on here.")

    async def _block(self, args: list[str], actor: Requester, *_: object) -> AdminReply:
        community = self._community(actor, "block")
        self._args(args, "block", 1)
        action, term = args[0].lower(), " ".join(args[1:])
        if action == "list":
            terms = await self.terms.list(community)
            return AdminReply.of(
                "Blocked terms here: " + ", ".join(terms) if terms else "No blocked terms here yet."
            )
        if action not in ("add", "remove") or not term:
            raise InvalidRequest("block", f"Usage: /admin {USAGE['block']}")
        if action == "add":
            stored = await self.terms.add(community, term)
            await self._record(actor, AuditAction.BLOCK_ADD, stored)
            return AdminReply.of(f"Prompts containing “{stored}” are now refused here.")
        removed = await self.terms.remove(community, term)
        await self._record(actor, AuditAction.BLOCK_REMOVE, term)
        return AdminReply.of(
            f"“{term}” is no longer blocked here." if removed else f"“{term}” wasn't blocked here."
        )

    async def _lora(self, args: list[str], actor: Requester, *_: object) -> AdminReply:
        """Turn a LoRA of the bot's catalog off (or back on) here; `list` shows which are off."""
        community = self._community(actor, "lora")
        self._args(args, "lora", 1)
        action = args[0].lower()
        if action == "list":
            denied = (await self.communities.policy(community)).denied_loras
            return AdminReply.of(
                "LoRAs turned off here: " + ", ".join(denied) if denied else "Every LoRA is allowed here."
            )
        if action not in ("deny", "allow") or len(args) != 2:
            raise InvalidRequest("lora", f"Usage: /admin {USAGE['lora']}")
        name = args[1].lower()
        known = sorted(self.settings.adapters.loras)
        if name not in known:
            listed = ", ".join(known) or "none"
            raise InvalidRequest("lora", f"I don't know the LoRA “{name}”. The LoRAs on this bot: {listed}.")
        await self.communities.set_lora(community, name, allowed=action == "allow")
        audited = AuditAction.LORA_ALLOW if action == "allow" else AuditAction.LORA_DENY
        await self._record(actor, audited, name)
        if action == "allow":
            return AdminReply.of(f"The LoRA “{name}” is allowed here again.")
        return AdminReply.of(f"The LoRA “{name}” is turned off here: --lora {name} is refused.")

    async def _policy(self, args: list[str], actor: Requester, *_: object) -> AdminReply:
        community = self._community(actor, "policy")
        self._args(args, "policy", 2)
        name, value = args[0].lower(), args[1]
        if name == "logchannel":  # only this chat: a chat id typed by hand could be another community's
            if value.lower() not in ("here", "off"):
                raise InvalidRequest(
                    "logchannel",
                    "Send “/admin policy logchannel here” in the chat that should get moderator notices, "
                    "or “off” to stop them.",
                )
            value = actor.chat_id if value.lower() == "here" else "off"
        policy = await self.communities.set_policy(community, name, value)
        await self._record(actor, AuditAction.POLICY, community, f"{name}={value}")
        log_channel = "this chat" if policy.log_channel == actor.chat_id else (policy.log_channel or "none")
        return AdminReply.of(
            f"Policy here: NSFW {policy.nsfw or 'bot default'} (only ever in age-restricted channels), "
            f"buttons for {policy.buttons}, default model {policy.default_model or 'bot default'}, "
            f"moderator notices to {log_channel}."
        )

    async def _delete(self, args: list[str], actor: Requester, *_: object) -> AdminReply:
        """Take a result (or one of its images) down, with the messages that show it (takedown.py).

        The grid and the chat preview show every image, so they go whenever any image does. Files that other
        results still show (the same bytes made elsewhere, or a cache hit) stay in storage.
        """
        self._args(args, "delete", 1)
        request_id = args[0]
        request = await self.queue.load(request_id)
        self._require_here(actor, request, "delete")
        result = await self.results.load(request_id)
        chosen = list(result.images)
        if len(args) > 1:
            index = image_number(args[1], [(image.index or 0) + 1 for image in result.images])
            chosen = [image for image in result.images if (image.index or 0) == index]
        outcome = await self.takedown.remove(request, result, chosen)
        await self._record(
            actor, AuditAction.DELETE, request_id, files=str(outcome.deleted), kept=str(outcome.kept)
        )
        messages = tuple(await self.deliveries.locations(request_id))
        if not outcome.deleted:
            text = (
                f"Removed {request_id}; its files are also shown by other results, so they stay in storage."
            )
        elif outcome.kept:
            text = (
                f"Deleted {outcome.deleted} file(s) of {request_id}; {outcome.kept} more are also shown by "
                "other results, so they stay in storage."
            )
        else:
            text = f"Deleted {outcome.deleted} file(s) of {request_id}."
        return AdminReply.of(text, delete_messages=messages)

    async def _style(self, args: list[str], actor: Requester, *_: object) -> AdminReply:
        """style add <name> <template…> [--no <terms…>] | style remove <name> | style list"""
        community = self._community(actor, "style")
        self._args(args, "style", 1)
        action = args[0].lower()
        if action == "list":
            styles = await self.styles.all(actor)
            if not styles:
                return AdminReply.of("No styles here yet. /admin style add <name> <template with {prompt}>")
            return AdminReply.of("Styles here:\n" + "\n".join(style.line() for style in styles))
        if action == "remove" and len(args) == 2:
            removed = await self.styles.remove(community, args[1])
            await self._record(actor, AuditAction.STYLE_REMOVE, args[1].lower())
            name = args[1].lower()
            return AdminReply.of(
                f"Removed the style “{name}”." if removed else f"There was no style “{name}” here."
            )
        if action != "add" or len(args) < 3:
            raise InvalidRequest("style", f"Usage: /admin {USAGE['style']}")
        words = args[2:]
        cut = next((i for i, word in enumerate(words) if word.lower() in ("--no", "—no")), len(words))
        template, negative = " ".join(words[:cut]), " ".join(words[cut + 1 :])
        name = await self.styles.add(community, args[1], template, negative)
        await self._record(actor, AuditAction.STYLE_ADD, name, template, negative=negative)
        return AdminReply.of(f"Added the style “{name}”: /imagine a fox --style {name}")

    async def _check(self, args: list[str], actor: Requester, *_: object) -> AdminReply:
        raise InvalidRequest(
            "check", "Attach an image to /admin check, or send it in reply to an image, and I'll read it."
        )

    async def check_image(
        self, image: bytes | Callable[[], Awaitable[bytes]], actor: Requester
    ) -> AdminReply:
        """/admin check on an image someone posted: its Content Credentials and watermark, in plain words.

        `image`: the bytes, or a fetcher called only once the actor may use the command."""
        try:
            require(self._level(actor), Privilege.MOD, "use /admin check")
        except NotAllowed as exc:
            await self._record(actor, AuditAction.ADMIN_REFUSED, "check", exc.message)
            raise
        data = image if isinstance(image, bytes) else await image()
        if len(data) > UPLOAD_MAX_BYTES:
            raise InvalidRequest(
                "check",
                f"That file is {len(data) / 1e6:.1f} MB; I read images up to {UPLOAD_MAX_BYTES // 1_000_000} MB.",
            )
        read_upload(
            data, self.settings.limits.max_upload_pixels
        )  # a picture, of a sane size, or a clear refusal
        report = await self.provenance.describe(data)
        await self._record(actor, AuditAction.CHECK, content_key(data, "image/png").rsplit("/", 1)[-1][:16])
        return AdminReply.of("What this image says about itself:\n" + report)
