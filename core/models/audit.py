"""The audit trail's record: who did what to whom, stored as JSON on a Redis stream (core.governance.audit).

Every moderator's command and every refusal is one AuditEntry; its `action` is one of AuditAction, whose values
are the wire spelling, so entries written before the enum read unchanged.
"""

from __future__ import annotations

import time
from enum import StrEnum

from pydantic import Field

from core.models.request import Frozen


class AuditAction(StrEnum):
    # A moderator's /admin command (actor: the moderator).
    BAN = "ban"
    UNBAN = "unban"
    TIER = "tier"
    QUOTA = "quota"
    CANCEL = "cancel"
    PAUSE = "pause"
    RESUME = "resume"
    BLOCK_ADD = "block_add"
    BLOCK_REMOVE = "block_remove"
    POLICY = "policy"
    DELETE = "delete"
    LORA_DENY = "lora_deny"  # a LoRA turned off for a community
    LORA_ALLOW = "lora_allow"
    STYLE_ADD = "style_add"
    STYLE_REMOVE = "style_remove"
    CHECK = "check"  # /admin check read an image's provenance
    OWN_DELETE = "own_delete"  # a user deleted their own result (actor: the user)
    ADMIN_REFUSED = "admin_refused"  # an /admin command by someone without the privilege
    # What the bot refused or did on its own (actor: "system").
    PROMPT_REFUSED = "prompt_refused"
    PROMPT_UNCHECKED = "prompt_unchecked"  # the prompt check itself failed
    QUOTA_REFUSED = "quota_refused"
    COST_REFUSED = "cost_refused"  # a request over its tier's per-request cost limit
    BANNED_USER_REFUSED = "banned_user_refused"
    AUTO_BAN = "auto_ban"
    IMAGE_REFUSED = "image_refused"  # the image check withheld images
    # What a user did (actor: the user).
    GENERATED = "generated"  # a request delivered images (target: the request; details: its parameters)
    FORGET = "forget"  # a user deleted their own data with /forget (actor: their pseudonym)


# Actions whose target is a user ("platform:id").
USER_TARGETS = frozenset(
    {
        AuditAction.BAN,
        AuditAction.UNBAN,
        AuditAction.TIER,
        AuditAction.QUOTA,
        AuditAction.AUTO_BAN,
        AuditAction.BANNED_USER_REFUSED,
        AuditAction.PROMPT_REFUSED,
        AuditAction.PROMPT_UNCHECKED,
        AuditAction.QUOTA_REFUSED,
        AuditAction.COST_REFUSED,
    }
)


class AuditEntry(Frozen):
    actor: str  # "platform:user_id" of who acted, or "system"
    action: AuditAction
    target: str = ""  # the user, request or term acted on
    reason: str = ""
    community: str | None = None
    details: dict[str, str] = Field(default_factory=dict)
    at: float = Field(default_factory=time.time)
    actor_name: str | None = None  # display names when known, so the log can show people, not ids
    target_name: str | None = None

    @property
    def targets_user(self) -> bool:
        """Whether `target` is a user ("platform:id"); otherwise it names a request, a term or a community."""
        return self.action in USER_TARGETS and ":" in self.target

    def describe(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M", time.gmtime(self.at))
        text = f"{when} {self.actor} {self.action}"
        if self.target:
            text += f" {self.target}"
        if self.reason:
            text += f" — {self.reason}"
        return text
