"""Every output passes the on-device image check before storage: refused images never reach the public prefix,
are kept in quarantine for moderators, are refunded, and are audited.

The backend is a seam (our ImageBackend Protocol) that returns drawings the real NudeNet detector judges: one it
reports as exposed and one it reports clean (tests/drawings.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PIL import Image

from core import constants as c
from core.governance.audit import AUDIT_STREAM
from core.jobs.workers import WorkerInfo, WorkerRegistry
from core.keys import CACHE_KEY
from core.models.catalog import BackendKind
from core.models.request import GenerationRequest, Platform, Requester
from core.models.result import EventKind
from core.settings import Settings
from core.storage.factory import build_store
from moderation.factory import build_image_moderator
from tests.drawings import figure
from tests.pipeline_fixture import Pipeline
from worker.backend import GeneratedImage, Generation, ProgressCallback
from worker.context import WorkerContext
from worker.jobs import generate

ALICE = Requester(platform=Platform.CLI, user_id="alice", chat_id="c", community_id="g1")


class DrawingBackend:
    name = "diffusers"

    def __init__(self, *dressed: bool) -> None:
        self.dressed = dressed

    async def generate(
        self,
        request: GenerationRequest,
        source: Image.Image | None,
        on_progress: ProgressCallback | None = None,
    ) -> Generation:
        images = tuple(
            GeneratedImage(figure(dressed), seed)
            for dressed, seed in zip(self.dressed, request.seeds, strict=True)
        )
        return Generation(images=images, model="tiny", backend="diffusers")

    async def close(self) -> None:
        pass


async def run_job(
    pipeline: Pipeline, backend: DrawingBackend, text: str, requester: Requester = ALICE
) -> str:
    settings: Settings = pipeline.settings
    await WorkerRegistry(pipeline.runtime.redis).beat(WorkerInfo("w", c.QUEUE_GPU, ("tiny",), 0.0))
    request_id = (await pipeline.runtime.service.imagine(text, requester)).request_id
    deps = WorkerContext(
        settings=settings,
        queue_name=c.QUEUE_GPU,
        redis=pipeline.runtime.redis,
        store=build_store(settings),
        backends={BackendKind.DIFFUSERS: backend},
        image_moderator=build_image_moderator(settings),
    )
    ctx: dict[str, Any] = {"imagebot": deps, "job_try": 1}
    await generate(ctx, request_id)
    return request_id


def stored(settings: Settings, prefix: str) -> list[Path]:
    return sorted((Path(settings.storage.local_dir) / prefix).rglob("*.png"))


async def test_an_exposed_image_is_quarantined_refunded_and_the_clean_one_delivered(
    pipeline: Pipeline,
) -> None:
    request_id = await run_job(pipeline, DrawingBackend(False, True), "two people --n 2 --seed 5")
    result = await pipeline.runtime.service.result(request_id)
    assert result.kind is EventKind.DONE
    assert [image.index for image in result.images] == [1]
    assert "Image 1 didn't pass the safety check" in (result.message or "")
    assert len(stored(pipeline.settings, "quarantine")) == 1
    public = {path.name for path in stored(pipeline.settings, "images")}
    quarantined = stored(pipeline.settings, "quarantine")[0].name
    assert quarantined not in public
    status = await pipeline.runtime.service.admission.quotas.status(ALICE)
    assert status.used_today == 1  # charged for the delivered image only
    entries = [json.loads(f[b"entry"]) for _, f in await pipeline.runtime.redis.xrange(AUDIT_STREAM)]
    refused = [entry for entry in entries if entry["action"] == "image_refused"]
    assert refused and refused[0]["target"] == request_id and refused[0]["reason"] == "nsfw"


async def test_when_every_image_is_refused_the_user_is_told_and_not_charged(pipeline: Pipeline) -> None:
    request_id = await run_job(pipeline, DrawingBackend(False), "a person --n 1")
    result = await pipeline.runtime.service.result(request_id)
    assert result.kind is EventKind.REFUSED
    assert "didn't pass the safety check" in (result.message or "")
    assert stored(pipeline.settings, "images") == []
    assert (await pipeline.runtime.service.admission.quotas.status(ALICE)).used_today == 0


async def test_a_community_that_allows_spoilers_gets_them_in_age_restricted_channels(
    pipeline: Pipeline,
) -> None:
    from core.models.privileges import Privilege

    admin = ALICE.model_copy(update={"user_id": "boss", "privilege": Privilege.ADMIN})
    await pipeline.runtime.admin.execute("policy nsfw spoiler", admin)
    nsfw_channel = ALICE.model_copy(update={"age_restricted": True})
    request_id = await run_job(pipeline, DrawingBackend(False), "a person --n 1 --seed 4", nsfw_channel)
    result = await pipeline.runtime.service.result(request_id)
    assert (
        result.kind is EventKind.DONE
        and result.images[0].spoiler
        and result.preview
        and result.preview.spoiler
    )
    # never replayed from the cache to someone outside that channel
    assert [key async for key in pipeline.runtime.redis.scan_iter(match=CACHE_KEY.format(digest="*"))] == []

    plain = await run_job(pipeline, DrawingBackend(False), "a person --n 1 --seed 9")
    assert (await pipeline.runtime.service.result(plain)).kind is EventKind.REFUSED


async def test_results_from_age_restricted_channels_are_never_cached(pipeline: Pipeline) -> None:
    from core.models.privileges import Privilege

    admin = ALICE.model_copy(update={"user_id": "boss", "privilege": Privilege.ADMIN})
    await pipeline.runtime.admin.execute("policy nsfw allow", admin)
    nsfw_channel = ALICE.model_copy(update={"age_restricted": True})
    request_id = await run_job(pipeline, DrawingBackend(False), "a person --n 1 --seed 4", nsfw_channel)
    result = await pipeline.runtime.service.result(request_id)
    assert result.kind is EventKind.DONE and not result.images[0].spoiler  # allowed there, as chosen
    assert [key async for key in pipeline.runtime.redis.scan_iter(match=CACHE_KEY.format(digest="*"))] == []
