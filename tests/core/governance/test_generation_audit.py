"""Successful generations in the audit trail: kept out of a moderator's default view, shown when asked for."""

from __future__ import annotations

from core.governance.audit import AuditAction, AuditEntry, AuditLog
from core.models.privileges import Privilege
from core.models.request import Platform, Requester
from tests.pipeline_fixture import Pipeline

GROUP = "-100"
MOD = Requester(
    platform=Platform.TELEGRAM, user_id="7", chat_id=GROUP, community_id=GROUP, privilege=Privilege.MOD
)


async def test_generations_are_audited_but_shown_only_when_asked_for(pipeline: Pipeline) -> None:
    audit = AuditLog(pipeline.runtime.redis)
    community = f"telegram:{GROUP}"
    await audit.record(
        AuditEntry(actor="telegram:7", action=AuditAction.BAN, target="telegram:1", community=community)
    )
    for number in range(3):
        await audit.record(
            AuditEntry(
                actor="telegram:1",
                action=AuditAction.GENERATED,
                target=f"request{number:09d}",
                community=community,
                details={"prompt": "a fox", "model": "tiny"},
            )
        )
    admin = pipeline.runtime.admin

    default = (await admin.execute("audit", MOD)).text
    assert default.splitlines()[0].endswith("7 ban 1") and "generated" not in default
    asked = (await admin.execute("audit action generated", MOD)).text.splitlines()
    assert [line.split(" ", 3)[3] for line in asked] == [f"generated request{n:09d}" for n in (2, 1, 0)]
