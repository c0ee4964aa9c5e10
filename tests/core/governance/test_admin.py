"""Admin commands through core, against a real Redis and local storage; every action lands in the audit log."""

from __future__ import annotations

import pytest

from core import constants as c
from core.delivery.events import stream_key
from core.errors import InvalidRequest, NotAllowed, PromptRejected, QuotaExceeded
from core.governance.audit import AUDIT_STREAM
from core.jobs.workers import WorkerInfo, WorkerRegistry
from core.keys import CACHE_KEY
from core.models.privileges import Privilege
from core.models.request import GenerationRequest, Platform, Requester
from core.models.result import EventKind, ResultEvent, StoredImage
from tests.pipeline_fixture import Pipeline

GROUP = "-100"


def member(user_id: str, privilege: Privilege = Privilege.USER, community: str | None = GROUP) -> Requester:
    return Requester(
        platform=Platform.TELEGRAM,
        user_id=user_id,
        chat_id=community or user_id,
        community_id=community,
        privilege=privilege,
    )


USER, MOD, ADMIN = member("1"), member("2", Privilege.MOD), member("3", Privilege.ADMIN)
OWNER = member("4", Privilege.OWNER)


async def audit_actions(pipeline: Pipeline) -> list[str]:
    import json

    entries = await pipeline.runtime.redis.xrange(AUDIT_STREAM)
    return [json.loads(fields[b"entry"])["action"] for _, fields in entries]


async def busy_worker(pipeline: Pipeline) -> None:
    await WorkerRegistry(pipeline.runtime.redis).beat(WorkerInfo("w1", c.QUEUE_GPU, ("tiny",), 0.0))


async def test_a_plain_user_cannot_use_admin_commands(pipeline: Pipeline) -> None:
    admin = pipeline.runtime.admin
    with pytest.raises(NotAllowed, match="Only mods can use /admin ban"):
        await admin.execute("ban 4 spam", USER)
    with pytest.raises(NotAllowed, match="Only owners can use /admin tier"):
        await admin.execute("tier 5 supporter", ADMIN)  # a server's admin can't lift limits bot-wide
    assert "ban" in admin.help(Privilege.MOD) and "tier" not in admin.help(Privilege.ADMIN)
    assert (await admin.execute("help", USER)).text == "You have no admin commands."
    assert await audit_actions(pipeline) == ["admin_refused", "admin_refused"]


async def test_ban_stops_a_user_here_with_one_clear_message_until_unbanned(pipeline: Pipeline) -> None:
    await busy_worker(pipeline)
    admin, service = pipeline.runtime.admin, pipeline.runtime.service
    reply = await admin.execute("ban 1 for 2h posting spam", MOD)
    assert reply.text == "Banned 1 here for 2 h 0 min: posting spam"
    with pytest.raises(
        NotAllowed, match=r"banned from using this bot \(posting spam\); it ends in (1 h 59|2 h 0) min"
    ):
        await service.imagine("a cat", USER)
    assert await pipeline.runtime.redis.zcard(c.QUEUE_GPU) == 0
    elsewhere = member("1", community="-999")
    assert (await service.imagine("a cat", elsewhere)).queue == c.QUEUE_GPU  # a community ban stays there
    assert (await admin.execute("unban 1", MOD)).text == "Unbanned 1."
    assert (await service.imagine("a dog", USER)).queue == c.QUEUE_GPU
    reply = await admin.execute("ban 9 for spamming the channel", MOD)
    assert reply.text == "Banned 9 here: for spamming the channel"
    with pytest.raises(InvalidRequest, match="can't ban yourself"):
        await admin.execute("ban 2", MOD)
    assert await audit_actions(pipeline) == ["ban", "banned_user_refused", "unban", "ban"]


async def test_quota_tier_usage_and_the_refusal_message(pipeline: Pipeline) -> None:
    await busy_worker(pipeline)
    admin, service = pipeline.runtime.admin, pipeline.runtime.service
    assert (await admin.execute("quota 1 4", OWNER)).text == "1 may now make 4 images a day."
    first = await service.imagine("a cat --n 4", USER)
    with pytest.raises(QuotaExceeded, match="used 4 of your 4 images for today"):
        await service.imagine("a dog --n 1", USER)
    usage = (await admin.execute("usage 1", MOD)).text
    assert "Today: 4 of 4 images" in usage and first.request_id in usage
    assert (await admin.execute("tier 1 unlimited", OWNER)).text == "1 is now on the unlimited tier."
    with pytest.raises(InvalidRequest, match="Unknown tier"):
        await admin.execute("tier 1 gold", OWNER)
    assert "quota_refused" in await audit_actions(pipeline)


async def test_cancel_any_job_refunds_it_and_queue_shows_the_workers(pipeline: Pipeline) -> None:
    await busy_worker(pipeline)
    admin, service = pipeline.runtime.admin, pipeline.runtime.service
    job = await service.imagine("a cat --n 4", USER)
    queue = (await admin.execute("queue", MOD)).text
    assert "gpu: 1 waiting, 1 worker(s)" in queue and "w1: tiny" in queue
    with pytest.raises(NotAllowed):
        await service.cancel(job.request_id, member("5"))
    elsewhere = member("9", Privilege.MOD, community="-777")
    with pytest.raises(NotAllowed, match="another community"):
        await admin.execute(f"cancel {job.request_id}", elsewhere)
    with pytest.raises(NotAllowed, match="or a moderator where it was asked"):
        await service.cancel(job.request_id, elsewhere)
    assert job.request_id not in (await admin.execute("usage 1", elsewhere)).text
    assert job.request_id in (await admin.execute("usage 1", MOD)).text
    assert (await admin.execute(f"cancel {job.request_id}", MOD)).text.startswith(
        f"Cancelled {job.request_id}"
    )
    assert await pipeline.runtime.redis.zcard(c.QUEUE_GPU) == 0
    assert (await service.admission.quotas.status(USER)).used_today == 0
    cancelled = await service.result(job.request_id)  # the owner's "Queued…" message turns into this
    assert (
        cancelled.kind is EventKind.CANCELLED
        and cancelled.message == "Cancelled by a moderator before it started."
    )
    entries = await pipeline.runtime.redis.xrange(stream_key(Platform.TELEGRAM))
    kinds = [ResultEvent.model_validate_json(f[b"event"]).kind for _, f in entries]
    assert kinds == [EventKind.CANCELLED]
    assert "cancel" in await audit_actions(pipeline)


async def test_pause_block_and_policy_apply_to_the_community(pipeline: Pipeline) -> None:
    await busy_worker(pipeline)
    admin, service = pipeline.runtime.admin, pipeline.runtime.service
    await admin.execute("pause", MOD)
    with pytest.raises(NotAllowed, match="paused in this community"):
        await service.imagine("a cat", USER)
    await admin.execute("resume", MOD)

    reply = await admin.execute("block add pineapple pizza", MOD)
    assert "pineapple pizza" in reply.text
    with pytest.raises(PromptRejected):
        await service.imagine("a photo of PINEAPPLE   pizza on a table", USER)
    assert (await service.imagine("a pineapple on a table", USER)).queue == c.QUEUE_GPU
    assert "pineapple pizza" in (await admin.execute("block list", MOD)).text
    await admin.execute("block remove pineapple pizza", MOD)
    assert (await service.imagine("pineapple pizza", USER)).queue == c.QUEUE_GPU

    text = (await admin.execute("policy model sd15", ADMIN)).text
    assert "default model sd15" in text
    with pytest.raises(InvalidRequest, match="works in a group"):
        await admin.execute("pause", member("2", Privilege.MOD, community=None))
    actions = await audit_actions(pipeline)
    assert actions[:2] == ["pause", "resume"] and "block_add" in actions and "policy" in actions


async def test_delete_removes_the_files_and_names_the_messages(pipeline: Pipeline) -> None:
    runtime = pipeline.runtime
    store = runtime.service.store
    key = await store.put(b"\x89PNG fake", "image/png")
    image = StoredImage(key=key, url=await store.url(key), width=8, height=8, seed=1, index=0)
    await runtime.service.queue.store(
        GenerationRequest(
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
    )
    await runtime.service.results.save(
        ResultEvent(kind=EventKind.DONE, request_id="abcdefghijklmnop", requester=USER, images=(image,))
    )
    from core.delivery.delivery_log import DeliveryLog

    await DeliveryLog(runtime.redis).record("abcdefghijklmnop", {"chat_id": GROUP, "message_id": "77"})
    other_mod = member("9", Privilege.MOD, community="-777")
    with pytest.raises(NotAllowed, match="made in another community"):
        await runtime.admin.execute("delete abcdefghijklmnop", other_mod)
    await store.get(key)  # still there
    reply = await runtime.admin.execute("delete abcdefghijklmnop", MOD)
    assert reply.delete_messages == ({"chat_id": GROUP, "message_id": "77"},)
    with pytest.raises(Exception, match="No image is stored"):
        await store.get(key)
    assert (await runtime.service.result("abcdefghijklmnop")).images == ()


async def test_audit_filters_by_user_action_and_time(pipeline: Pipeline) -> None:
    admin = pipeline.runtime.admin
    await admin.execute("ban 7 spam", MOD)
    await admin.execute("tier 8 supporter", OWNER)
    assert " 2 ban 7 — spam" in (await admin.execute("audit user 7", MOD)).text
    only_tiers = (await admin.execute("audit action tier since 1h", MOD)).text
    assert " 4 tier 8" in only_tiers and "ban" not in only_tiers
    with pytest.raises(InvalidRequest, match="Usage: /admin audit"):
        await admin.execute("audit colour blue", MOD)


async def test_repeated_refused_prompts_give_an_automatic_temporary_ban(pipeline: Pipeline) -> None:
    await busy_worker(pipeline)
    service = pipeline.runtime.service
    limit = pipeline.settings.privileges.refusals_before_ban
    await pipeline.runtime.admin.execute("block add forbidden thing", MOD)
    mods_room = ADMIN.model_copy(update={"chat_id": "-555"})
    assert (
        "notices to this chat"
        in (await pipeline.runtime.admin.execute("policy logchannel here", mods_room)).text
    )
    for _ in range(limit):
        with pytest.raises(PromptRejected):
            await service.imagine("a forbidden thing", USER)
    with pytest.raises(NotAllowed, match="refused prompts"):
        await service.imagine("a kitten", USER)
    assert "auto_ban" in await audit_actions(pipeline)
    entries = await pipeline.runtime.redis.xrange(stream_key(Platform.TELEGRAM))
    notices = [ResultEvent.model_validate_json(f[b"event"]) for _, f in entries]
    notices = [event for event in notices if event.kind is EventKind.NOTICE]
    assert len(notices) == 1 and notices[0].reply_to["chat_id"] == "-555"
    assert "Automatic ban: telegram:1" in (notices[0].message or "")


async def test_deleting_one_image_takes_the_grid_and_preview_with_it_but_spares_shared_files(
    pipeline: Pipeline,
) -> None:
    from core.delivery.delivery_log import DeliveryLog
    from core.jobs.cache import cache_digest

    runtime = pipeline.runtime
    store, service = runtime.service.store, runtime.service

    async def stored(name: bytes, index: int | None = None) -> StoredImage:
        key = await store.put(name, "image/png")
        return StoredImage(key=key, url=await store.url(key), width=8, height=8, seed=index, index=index)

    first, second = await stored(b"one", 0), await stored(b"two", 1)
    grid, preview = await stored(b"grid"), await stored(b"preview")
    request = GenerationRequest(
        request_id="aaaaaaaaaaaaaaaa",
        prompt="p",
        width=8,
        height=8,
        steps=1,
        guidance=0,
        seeds=(1, 2),
        seed_explicit=True,
        model="tiny",
        requester=USER,
    )
    await service.queue.store(request)
    done = ResultEvent(
        kind=EventKind.DONE,
        request_id=request.request_id,
        requester=USER,
        images=(first, second),
        grid=grid,
        preview=preview,
    )
    await service.results.save(done)
    await service.cache.put(request, done)
    copy = request.model_copy(update={"request_id": "bbbbbbbbbbbbbbbb"})
    await service.queue.store(copy)
    await service.results.save(done.model_copy(update={"request_id": copy.request_id, "cached": True}))
    await DeliveryLog(runtime.redis).record(request.request_id, {"chat_id": GROUP, "message_id": "5"})

    shared = await runtime.admin.execute(f"delete {copy.request_id}", MOD)
    assert "also shown by other results, so they stay in storage" in shared.text
    assert await store.get(first.key) == b"one"  # the original's files are untouched
    assert await runtime.redis.get(CACHE_KEY.format(digest=cache_digest(request))) is None  # never replayed

    reply = await runtime.admin.execute(f"delete {request.request_id} 1", MOD)
    assert reply.delete_messages == ({"chat_id": GROUP, "message_id": "5"},)
    for gone in (first, grid, preview):
        with pytest.raises(Exception, match="No image is stored"):
            await store.get(gone.key)
    assert await store.get(second.key) == b"two"
    assert (await service.image(request.request_id, 1, USER)).key == second.key  # U2 is still image 2
    with pytest.raises(InvalidRequest, match="isn't available"):
        await service.image(request.request_id, 0, USER)
