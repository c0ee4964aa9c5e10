"""Admission rules that protect users: a moderation outage is never held against them."""

from __future__ import annotations

import pytest

from core.errors import NotAllowed, PromptRejected
from core.models.request import Platform, Requester
from core.models.verdict import Outcome, Verdict
from tests.pipeline_fixture import Pipeline

ALICE = Requester(platform=Platform.TELEGRAM, user_id="1", chat_id="-100", community_id="-100")


class Outage:
    """The prompt check of a deployment whose remote moderation is down and which fails closed."""

    async def check_prompt(self, prompt: str, negative_prompt: str, community_id: str | None) -> Verdict:
        return Verdict(
            Outcome.REFUSED,
            reason_code="moderation_unavailable",
            message="I can't check prompts right now; please try again in a few minutes.",
        )


async def test_a_moderation_outage_refuses_politely_and_never_bans(pipeline: Pipeline) -> None:
    admission = pipeline.runtime.service.admission
    admission.moderator = Outage()
    for _ in range(pipeline.settings.privileges.refusals_before_ban + 3):
        with pytest.raises(PromptRejected, match="can't check prompts right now") as refused:
            await admission.check_prompt("a cat on a sofa", "", ALICE)
        assert refused.value.code == "moderation_unavailable"
    await admission.admit(ALICE)  # not banned
    assert await admission.bans.get("telegram:1", "telegram:-100") is None


async def test_buttons_for_everyone_apply_only_within_the_community_that_allows_them(
    pipeline: Pipeline,
) -> None:
    from core import constants as c
    from core.jobs.workers import WorkerInfo, WorkerRegistry
    from core.models.privileges import Privilege

    await WorkerRegistry(pipeline.runtime.redis).beat(WorkerInfo("w", c.QUEUE_GPU, ("tiny",), 0.0))
    service, admin = pipeline.runtime.service, pipeline.runtime.admin
    job = await service.imagine("a boat --n 1", ALICE)
    stranger_here = ALICE.model_copy(update={"user_id": "2"})
    stranger_elsewhere = ALICE.model_copy(update={"user_id": "3", "community_id": "-200", "chat_id": "-200"})
    boss_elsewhere = stranger_elsewhere.model_copy(update={"user_id": "4", "privilege": Privilege.ADMIN})
    await admin.execute("policy buttons everyone", boss_elsewhere)  # -200 lets everyone press
    with pytest.raises(NotAllowed):
        await service.check_owner(job.request_id, stranger_elsewhere)  # but the job was made in -100
    with pytest.raises(NotAllowed):
        await service.check_owner(job.request_id, stranger_here)
    await admin.execute(
        "policy buttons everyone", ALICE.model_copy(update={"user_id": "5", "privilege": Privilege.ADMIN})
    )
    assert (await service.check_owner(job.request_id, stranger_here)).request_id == job.request_id


async def test_the_log_channel_can_only_be_the_chat_the_command_is_sent_in(pipeline: Pipeline) -> None:
    from core.errors import InvalidRequest
    from core.models.privileges import Privilege

    boss = ALICE.model_copy(update={"privilege": Privilege.ADMIN})
    with pytest.raises(InvalidRequest, match="logchannel here"):
        await pipeline.runtime.admin.execute("policy logchannel -100999", boss)


async def test_varying_a_cloud_result_fits_the_local_models_sizes(pipeline: Pipeline) -> None:
    from core import constants as c
    from core.jobs.workers import WorkerInfo, WorkerRegistry
    from core.models.request import GenerationRequest
    from core.models.result import EventKind, ResultEvent, StoredImage

    await WorkerRegistry(pipeline.runtime.redis).beat(WorkerInfo("w", c.QUEUE_GPU, ("tiny",), 0.0))
    service = pipeline.runtime.service
    key = await service.store.put(b"a picture from OpenAI", "image/png")
    parent = GenerationRequest(
        request_id="cccccccccccccccc",
        prompt="a harbour",
        width=1792,
        height=1024,
        steps=1,
        guidance=0,
        seeds=(1,),
        model="dall-e-3",
        requester=ALICE,
    )
    await service.queue.store(parent)
    image = StoredImage(key=key, url="file:///x", width=1792, height=1024, seed=1, index=0)
    await service.results.save(
        ResultEvent(kind=EventKind.DONE, request_id=parent.request_id, requester=ALICE, images=(image,))
    )
    child = await service.queue.load((await service.vary(parent.request_id, 0, ALICE)).request_id)
    assert (child.model, child.width, child.height) == ("tiny", 88, 48)


# --- the per-request cost limit (megapixel-steps) ---------------------------------------------------------------


async def test_a_request_over_its_tiers_cost_limit_is_refused_at_submit_and_nothing_is_reserved(
    pipeline: Pipeline,
) -> None:
    from core import constants as c
    from core.errors import InvalidRequest
    from core.governance.audit import AuditLog
    from core.governance.quotas import RESERVATION_KEY
    from core.jobs.workers import WorkerInfo, WorkerRegistry

    redis, service = pipeline.runtime.redis, pipeline.runtime.service
    await WorkerRegistry(redis).beat(WorkerInfo("w", c.QUEUE_GPU, ("sd15",), 0.0))

    with pytest.raises(InvalidRequest) as refused:
        await service.imagine("a castle --model sd15 --size 1024x1024 --steps 50 --n 4", ALICE)

    assert refused.value.field == "cost"
    message = refused.value.message
    assert "4 images × 1024×1024 × 50 steps = 209.7 megapixel-steps" in message
    assert "limit of 128" in message and "free tier" in message
    assert "fewer images (--n), fewer steps (--steps) or a smaller size (--size)" in message
    assert "--n 2 or --steps 30 would fit" in message
    status = await service.admission.quotas.status(ALICE)
    assert (status.used_today, status.used_this_hour, status.in_flight) == (0, 0, 0)
    assert await redis.keys(RESERVATION_KEY.format(request_id="*")) == []
    assert await redis.zcard(c.QUEUE_GPU) == 0
    assert [entry.action for entry in await AuditLog(redis).read(user="telegram:1")] == ["cost_refused"]

    # What the message suggests fits: 4 × 1024×1024 × 30 steps is 125.8 megapixel-steps.
    accepted = await service.imagine("a castle --model sd15 --size 1024x1024 --steps 30 --n 4", ALICE)
    work = await redis.hget(RESERVATION_KEY.format(request_id=accepted.request_id), "work")
    assert float(work or 0) == 125.829
    assert (await service.admission.quotas.status(ALICE)).used_today == 4


async def test_the_cost_limit_is_per_tier(pipeline: Pipeline) -> None:
    from core import constants as c
    from core.jobs.workers import WorkerInfo, WorkerRegistry

    service = pipeline.runtime.service
    await WorkerRegistry(pipeline.runtime.redis).beat(WorkerInfo("w", c.QUEUE_GPU, ("sd15",), 0.0))
    await service.admission.quotas.set_tier("telegram:1", "supporter")  # up to 512 megapixel-steps

    queued = await service.imagine("a castle --model sd15 --size 1024x1024 --steps 50 --n 4", ALICE)

    assert queued.position == 1
