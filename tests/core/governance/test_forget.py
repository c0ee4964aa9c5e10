"""/forget through core, against a real Redis, local storage and a worker on `tiny`: what goes, what stays, who
may confirm, and a render cancelled while it runs."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from core import constants as c
from core.delivery.events import follow
from core.delivery.tally import ALL
from core.errors import InvalidRequest, NotAllowed
from core.governance.forget import decode_forget_button, forget_button, pseudonym
from core.governance.preferences import PreferenceStore
from core.governance.stats import StatsReader, day_of
from core.jobs.workers import WorkerInfo, WorkerRegistry
from core.keys import (
    AUDIT_STREAM,
    COMMUNITY_AUDIT_STREAM,
    PREFS_KEY,
    REQUEST_KEY,
    RESULT_KEY,
    USER_REQUESTS_KEY,
)
from core.models.catalog import BackendKind
from core.models.request import GenerationRequest, Platform, Requester
from core.models.result import EventKind, ResultEvent
from core.models.verdict import AllowAll
from tests.pipeline_fixture import Pipeline
from worker.backend import GeneratedImage, Generation, ProgressCallback
from worker.context import WorkerContext
from worker.jobs import generate

GROUP = "-100"
ALICE = Requester(
    platform=Platform.TELEGRAM, user_id="1", chat_id=GROUP, community_id=GROUP, display_name="Alice"
)
BOB = Requester(platform=Platform.TELEGRAM, user_id="2", chat_id=GROUP, community_id=GROUP)


async def finished(pipeline: Pipeline, request_id: str) -> ResultEvent:
    async with asyncio.timeout(60):
        async for event in follow(pipeline.runtime.redis, Platform.TELEGRAM):
            if event.request_id == request_id and event.terminal:
                return event
    raise AssertionError("unreachable")


async def audit_text(pipeline: Pipeline) -> str:
    """Every audit entry, of the whole bot and of the group, as stored."""
    redis = pipeline.runtime.redis
    texts = []
    for stream in (AUDIT_STREAM, COMMUNITY_AUDIT_STREAM.format(community=f"telegram:{GROUP}")):
        texts += [fields[b"entry"].decode() for _, fields in await redis.xrange(stream)]
    return "\n".join(texts)


async def test_forget_removes_a_users_data_keeps_what_others_show_and_pseudonymises_the_audit(
    pipeline: Pipeline,
) -> None:
    runtime = pipeline.runtime
    service, redis, store = runtime.service, runtime.redis, runtime.service.store
    await pipeline.start_worker()
    await PreferenceStore(redis).update("telegram", "1", aspect="16:9")
    shared = await service.imagine("a lighthouse --seed 7 --n 2", ALICE)
    own = await service.imagine("a secret garden --n 1", ALICE)
    shared_done, own_done = (
        await finished(pipeline, shared.request_id),
        await finished(pipeline, own.request_id),
    )
    assert shared_done.kind is own_done.kind is EventKind.DONE
    bobs = await service.imagine(
        "a lighthouse --seed 7 --n 2", BOB
    )  # a cache hit: Bob's result shows Alice's files
    assert bobs.cached
    await pipeline.stop_workers()
    await WorkerRegistry(redis).beat(WorkerInfo("elsewhere", c.QUEUE_GPU, ("tiny",), 0.0))
    waiting = await service.imagine("a boat --n 1", ALICE)  # no worker takes it: it waits
    quotas = service.admission.quotas
    assert (await quotas.status(ALICE)).used_today == 4

    plan = await service.forgetter.plan(ALICE)
    assert (plan.requests, plan.images, plan.waiting) == (3, 6, 1)  # 2 images+grid+preview, image+preview
    assert (
        "3 request(s)" in plan.text()
        and "1 job(s) of yours still in progress are cancelled first" in plan.text()
    )
    with pytest.raises(NotAllowed):
        await service.forgetter.confirm(plan.token, BOB)
    done = await service.forgetter.confirm(plan.token, ALICE)

    assert (done.requests, done.results, done.cancelled) == (3, 2, 1)
    own_files = [image.key for image in (*own_done.images, own_done.preview) if image is not None]
    shared_files = [
        image.key for image in (*shared_done.images, shared_done.grid, shared_done.preview) if image
    ]
    assert done.files_deleted == len(own_files) and done.files_kept == len(shared_files)
    for key in own_files:
        with pytest.raises(Exception, match="No image is stored"):
            await store.get(key)
    for key in shared_files:  # still shown by Bob's result
        assert await store.get(key)
    assert (await service.result(bobs.request_id)).kind is EventKind.DONE
    for request_id in (shared.request_id, own.request_id, waiting.request_id):
        assert not await redis.exists(
            REQUEST_KEY.format(request_id=request_id), RESULT_KEY.format(request_id=request_id)
        )
    assert not await redis.exists(PREFS_KEY.format(platform="telegram", user_id="1"))
    assert not await redis.exists(USER_REQUESTS_KEY.format(owner="telegram:1"))
    assert await redis.zcard(c.QUEUE_GPU) == 0
    assert (
        await quotas.status(ALICE)
    ).used_today == 3  # the delivered images stay counted; the cancel is refunded

    text = await audit_text(pipeline)
    assert "telegram:1" not in text and "secret garden" not in text and "Alice" not in text
    assert done.pseudonym in text and done.pseudonym.startswith("forgotten:")
    entries = [json.loads(fields[b"entry"]) for _, fields in await redis.xrange(AUDIT_STREAM)]
    generated = [e for e in entries if e["action"] == "generated" and e["actor"] == done.pseudonym]
    assert len(generated) == 2 and all(e["details"]["prompt"] == "(forgotten)" for e in generated)
    assert entries[-1]["action"] == "forget" and entries[-1]["details"]["requests"] == "3"
    stats = await StatsReader(redis).day(ALL, day_of(quotas.now()))
    assert "telegram:1" not in [owner for owner, _ in stats.busiest]
    assert "telegram:2" in [owner for owner, _ in stats.busiest]

    with pytest.raises(InvalidRequest, match="expired or was used already"):
        await service.forgetter.confirm(plan.token, ALICE)
    assert "0 request(s)" in (await service.forgetter.plan(ALICE)).text()


def stored_files(root: Path) -> list[str]:
    return sorted(p.as_posix() for p in root.rglob("*") if p.is_file())


def test_buttons_and_pseudonyms() -> None:
    assert decode_forget_button(forget_button("abcdefghijklmnop", True)) == (True, "abcdefghijklmnop")
    assert decode_forget_button(forget_button("abcdefghijklmnop", False)) == (False, "abcdefghijklmnop")
    with pytest.raises(InvalidRequest):
        decode_forget_button("fg:y:../../etc")
    assert pseudonym("telegram:1", b"k") == pseudonym("telegram:1", b"k") != pseudonym("telegram:1", b"other")
    assert pseudonym("telegram:1", b"k") != pseudonym("telegram:2", b"k")


class Gated:
    """A backend that draws a grey square once the test lets it, so a test can act while it renders."""

    name = "diffusers"

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.go = asyncio.Event()

    async def generate(
        self,
        request: GenerationRequest,
        source: Image.Image | None,
        on_progress: ProgressCallback | None = None,
    ) -> Generation:
        self.started.set()
        await self.go.wait()
        images = tuple(
            GeneratedImage(Image.new("RGB", (64, 64), (90, 90, 90 + i)), s)
            for i, s in enumerate(request.seeds)
        )
        return Generation(images=images, model="tiny", backend="diffusers")

    async def close(self) -> None:
        pass


async def test_a_render_cancelled_by_forget_while_it_runs_keeps_and_charges_nothing(
    pipeline: Pipeline,
) -> None:
    runtime = pipeline.runtime
    service, redis = runtime.service, runtime.redis
    await WorkerRegistry(redis).beat(WorkerInfo("elsewhere", c.QUEUE_GPU, ("tiny",), 0.0))
    submission = await service.imagine("a fox --n 2", ALICE)
    backend = Gated()
    worker: dict[str, Any] = {
        "imagebot": WorkerContext(
            settings=pipeline.settings,
            queue_name=c.QUEUE_GPU,
            redis=redis,
            store=service.store,
            backends={BackendKind.DIFFUSERS: backend},
            image_moderator=AllowAll(),
        ),
        "job_try": 1,
    }
    job = asyncio.create_task(generate(worker, submission.request_id))
    await backend.started.wait()
    plan = await service.forgetter.plan(ALICE)
    assert plan.waiting == 1
    await service.forgetter.confirm(plan.token, ALICE)
    backend.go.set()
    assert await job == "cancelled"

    assert not await redis.exists(RESULT_KEY.format(request_id=submission.request_id))
    assert (await service.admission.quotas.status(ALICE)).used_today == 0
    assert stored_files(pipeline.settings.storage.local_dir / "images") == []
    assert "generated" not in await audit_text(pipeline)
