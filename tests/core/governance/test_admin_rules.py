"""Admin rules against a real Redis: strict arguments (18), rank (19), roles in usage (20), scoped automatic bans
(22), users shown as names or mentions (31) and a per-community audit log that floods elsewhere can't hide (17)."""

from __future__ import annotations

import pytest

from core import constants as c
from core.errors import InvalidRequest, NotAllowed, PromptRejected
from core.governance.admin import AdminService, UserRef
from core.governance.audit import AuditAction, AuditEntry
from core.jobs.workers import WorkerInfo, WorkerRegistry
from core.models.privileges import Privilege
from core.models.request import GenerationRequest, Platform, Requester
from core.models.result import EventKind, ResultEvent
from core.settings import QuotaSettings, Settings
from tests.pipeline_fixture import Pipeline
from tests.settings import with_settings

GROUP = "-100"


def member(
    user_id: str,
    privilege: Privilege = Privilege.USER,
    community: str | None = GROUP,
    name: str | None = None,
    roles: tuple[str, ...] = (),
) -> Requester:
    return Requester(
        platform=Platform.TELEGRAM,
        user_id=user_id,
        chat_id=community or user_id,
        community_id=community,
        privilege=privilege,
        display_name=name,
        roles=roles,
    )


USER = member("1", name="Una")
MOD = member("2", Privilege.MOD, name="Moe")
ADMIN = member("3", Privilege.ADMIN, name="Ada")
OWNER = member("4", Privilege.OWNER, name="Oz")
OWNER_IN_DM = member("4", Privilege.OWNER, community=None, name="Oz")
SUPPORTER = member("5", name="Sam", roles=("Supporters",))
PEOPLE = {person.user_id: person for person in (USER, MOD, ADMIN, OWNER, SUPPORTER)}


async def here(user_id: str) -> Requester | None:
    """The front end's lookup: how the group sees a user (rank, roles, name)."""
    return PEOPLE.get(user_id)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return with_settings(settings, quotas=QuotaSettings(role_tiers={"Supporters": "supporter"}))


async def bans(pipeline: Pipeline) -> list[bytes]:
    return sorted(await pipeline.runtime.redis.keys("imagebot:ban:*"))


# -- 18: arguments --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "message"),
    [
        ("ban 1 for 0m", "too short: a duration is at least 1 minute"),
        ("ban 1 for 99999w", "too long: a duration is at most 1 year"),
        ("ban 1 for ۱h spam", "isn't a duration I understand"),
        ("ban 1 for 2hours spam", "isn't a duration I understand"),
        ("ban ۱۲۳", r"numeric id \(digits 0-9\)"),
        ("ban 1²", r"numeric id \(digits 0-9\)"),
        ("quota 1 ²", "from 0 to 1,000,000 in digits 0-9"),
        ("quota 1 ۱۰", "from 0 to 1,000,000 in digits 0-9"),
        ("quota 1 2000000", "from 0 to 1,000,000"),
        ("audit since 99999w", "at most 1 year"),
        ("audit since 0m", "at least 1 minute"),
    ],
)
async def test_bad_arguments_are_refused_saying_what_is_allowed(
    pipeline: Pipeline, command: str, message: str
) -> None:
    with pytest.raises(InvalidRequest, match=message):
        await pipeline.runtime.admin.execute(command, OWNER, here)
    assert await bans(pipeline) == []


async def test_a_bounded_duration_bans_for_that_long_not_forever(pipeline: Pipeline) -> None:
    await pipeline.runtime.admin.execute("ban 1 for 1m spam", MOD, here)
    ttl = await pipeline.runtime.redis.ttl(f"imagebot:ban:telegram:{GROUP}:telegram:1")
    assert 0 < ttl <= 60


async def test_delete_with_an_image_number_that_is_not_ascii_is_refused(pipeline: Pipeline) -> None:
    runtime = pipeline.runtime
    request = GenerationRequest(
        request_id="abcdefghijklmnop",
        prompt="p",
        width=8,
        height=8,
        steps=1,
        guidance=0,
        seeds=(1,),
        model="tiny",
        requester=USER,
    )
    await runtime.service.queue.store(request)
    await runtime.service.results.save(
        ResultEvent(kind=EventKind.DONE, request_id=request.request_id, requester=USER)
    )
    for number in ("²", "۱", "0", "5"):
        with pytest.raises(InvalidRequest, match="isn't one of that result's images"):
            await runtime.admin.execute(f"delete {request.request_id} {number}", MOD, here)


# -- 19: rank -------------------------------------------------------------------------------------------------


async def test_nobody_acts_on_equal_or_higher_rank_or_lifts_their_own_ban(pipeline: Pipeline) -> None:
    admin: AdminService = pipeline.runtime.admin
    for command in ("ban 3", "unban 3", "ban 2"):  # the group's admin, and a fellow moderator
        with pytest.raises(NotAllowed, match="as high as yours or higher"):
            await admin.execute(command, MOD.model_copy(update={"user_id": "22"}), here)
    assert await bans(pipeline) == []

    await admin.execute("ban 2 spam", ADMIN, here)  # the admin bans the moderator …
    with pytest.raises(InvalidRequest, match="can't lift your own ban"):
        await admin.execute("unban 2", MOD, here)  # … who can't lift it themselves
    assert len(await bans(pipeline)) == 1
    with pytest.raises(NotAllowed, match="owners can't be banned"):
        await admin.execute("ban 4", ADMIN, here)
    with pytest.raises(NotAllowed, match="as high as yours"):
        await admin.execute("tier 4 supporter", OWNER.model_copy(update={"user_id": "44"}), here)


async def test_a_moderator_cannot_cancel_or_delete_an_admins_request(pipeline: Pipeline) -> None:
    await WorkerRegistry(pipeline.runtime.redis).beat(WorkerInfo("w", c.QUEUE_GPU, ("tiny",), 0.0))
    service, admin = pipeline.runtime.service, pipeline.runtime.admin
    job = await service.imagine("a boat --n 1", ADMIN)
    for command in ("cancel", "delete"):
        with pytest.raises(NotAllowed, match=r"rank \(admin\) is as high as yours or higher"):
            await admin.execute(f"{command} {job.request_id}", MOD, here)
    assert await pipeline.runtime.redis.zcard(c.QUEUE_GPU) == 1
    assert (await admin.execute(f"cancel {job.request_id}", ADMIN, here)).text.startswith("Cancelled")


# -- 20: usage with roles -------------------------------------------------------------------------------------


async def test_usage_shows_the_tier_the_targets_roles_give(pipeline: Pipeline) -> None:
    usage = (await pipeline.runtime.admin.execute("usage 5", MOD, here)).text
    assert usage.startswith("Usage of Sam:\nTier: supporter\n")


# -- 22: automatic bans ---------------------------------------------------------------------------------------


async def test_an_automatic_ban_in_a_private_chat_stays_there_says_why_and_shows_to_owners(
    pipeline: Pipeline,
) -> None:
    await WorkerRegistry(pipeline.runtime.redis).beat(WorkerInfo("w", c.QUEUE_GPU, ("tiny",), 0.0))
    service, admin = pipeline.runtime.service, pipeline.runtime.admin
    limit = pipeline.settings.privileges.refusals_before_ban
    in_dm = member("1", community=None, name="Una")
    await admin.execute("block add forbidden thing", MOD, here)  # the group blocks it; DMs use the defaults
    for _ in range(limit):
        with pytest.raises(PromptRejected) as refused:
            await service.imagine("a naked child", in_dm)
    assert refused.value.message.endswith(
        f"That's {limit} refused prompts within 10 min, so you can't make images in private chats with me "
        "for 1 h 0 min."
    )
    with pytest.raises(NotAllowed, match=r"banned from using this bot in private chats \(5 refused prompts"):
        await service.imagine("a kitten", in_dm)
    assert (await service.imagine("a kitten --n 1", USER)).queue == c.QUEUE_GPU  # not banned in the group

    usage = (await admin.execute("usage 1", OWNER_IN_DM)).text
    assert "Banned in private chats with the bot automatically for 1 h 0 min more (5 refused prompts" in usage
    audit = (await admin.execute("audit action auto_ban", OWNER_IN_DM)).text
    assert "system auto_ban Una — 5 refused prompts within 10 min" in audit
    assert (await admin.execute("unban 1", OWNER_IN_DM, here)).text == "Unbanned Una."
    assert (await service.imagine("a kitten --n 1", in_dm)).queue == c.QUEUE_GPU


async def test_refusals_in_one_community_do_not_ban_in_another(pipeline: Pipeline) -> None:
    await WorkerRegistry(pipeline.runtime.redis).beat(WorkerInfo("w", c.QUEUE_GPU, ("tiny",), 0.0))
    service = pipeline.runtime.service
    limit = pipeline.settings.privileges.refusals_before_ban
    for attempt in range(limit - 1):
        for group in ("-100", "-200"):
            with pytest.raises(PromptRejected):
                await service.imagine(f"a naked child {attempt}", member("1", community=group))
    assert await bans(pipeline) == []  # 2 × (limit - 1) refusals, but fewer than `limit` in either group


# -- 31: names, not ids ---------------------------------------------------------------------------------------


async def test_replies_and_the_audit_carry_users_as_values(pipeline: Pipeline) -> None:
    admin = pipeline.runtime.admin
    reply = await admin.execute("ban 1 for 2h spam", MOD, here)
    assert reply.users == (UserRef("telegram", "1", "Una"),)
    assert reply.text == "Banned Una here for 2 h 0 min: spam"
    assert reply.render(lambda user: f"<@{user.user_id}>") == "Banned <@1> here for 2 h 0 min: spam"
    escaped = (await admin.execute("unban 1", MOD, here)).render(
        lambda user: f'<a href="tg://user?id={user.user_id}">{user.plain()}</a>', lambda text: text.upper()
    )
    assert escaped == 'UNBANNED <a href="tg://user?id=1">Una</a>.'
    audit = await admin.execute("audit", MOD, here)
    assert audit.users == (
        UserRef("telegram", "2", "Moe"),
        UserRef("telegram", "1", "Una"),
        UserRef("telegram", "2", "Moe"),
        UserRef("telegram", "1", "Una"),
    )
    assert [line.split(" ", 2)[2] for line in audit.text.splitlines()] == [
        "Moe unban Una",
        "Moe ban Una — spam",
    ]


# -- 17: the audit log per community --------------------------------------------------------------------------


async def test_a_flood_of_refusals_elsewhere_does_not_hide_a_communitys_audit(pipeline: Pipeline) -> None:
    admin = pipeline.runtime.admin
    await admin.execute("ban 1 spam", MOD, here)
    flood = AuditEntry(
        actor="system",
        action=AuditAction.PROMPT_REFUSED,
        target="telegram:666",
        reason="blocked",
        community="telegram:-999",
    )
    for _ in range(5000):  # what 5,000 refused commands from one user in another group leave behind
        await admin.audit.record(flood)

    assert "Moe ban Una — spam" in (await admin.execute("audit", MOD, here)).text
    assert "Moe ban Una — spam" in (await admin.execute("audit action ban", MOD, here)).text
    elsewhere = member("9", Privilege.MOD, community="-999")
    assert "ban" not in (await admin.execute("audit action ban", elsewhere, here)).text  # not theirs to see
