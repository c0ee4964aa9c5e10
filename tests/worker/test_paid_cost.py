"""The paid fallback costs what OpenAI bills by model × quality × size: charged to the daily budget, recorded with
the job (its audit entry and the day's numbers), on the OpenAI emulator with the real SDK."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import SecretStr

from cli.runtime import open_runtime
from core import constants as c
from core.delivery.tally import ALL
from core.errors import QuotaExceeded
from core.governance.audit import AUDIT_STREAM
from core.governance.stats import StatsReader, day_of
from core.keys import BUDGET_KEY
from core.models.request import Platform, Requester
from core.models.result import EventKind
from core.models.verdict import AllowAll
from core.settings import Settings
from tests.emulators.openai_api import OpenAIEmulator
from tests.emulators.openai_fixture import openai_emulator_fixture  # noqa: F401
from tests.pipeline_fixture import Pipeline
from tests.settings import with_settings
from tests.worker.test_pipeline import wait_for_result
from worker.context import WorkerContext
from worker.ledger import record_job

ALICE = Requester(platform=Platform.CLI, user_id="alice", chat_id="c1", display_name="Alice")


def paid_settings(settings: Settings, emulator: OpenAIEmulator, quality: str, budget: float) -> Settings:
    openai = {
        "api_key": SecretStr(emulator.api_key),
        "base_url": emulator.base_url,
        "model": "gpt-image-1",
        "quality": quality,
    }
    return with_settings(settings, openai=openai, quotas={"openai_daily_budget_usd": budget})


async def generated_entries(redis: Any) -> list[dict[str, Any]]:
    entries = [json.loads(fields[b"entry"]) for _, fields in await redis.xrange(AUDIT_STREAM)]
    return [entry for entry in entries if entry["action"] == "generated"]


async def test_a_high_quality_portrait_is_charged_its_own_price_and_recorded_once(
    settings: Settings,
    openai_emulator: OpenAIEmulator,
    redis: Any,
) -> None:
    settings = paid_settings(settings, openai_emulator, "high", budget=0.60)
    async with open_runtime(settings) as runtime:
        cloud = Pipeline(runtime)
        await cloud.start_worker(c.QUEUE_CLOUD)
        try:
            submission = await runtime.service.imagine("a lighthouse --ar 2:3 --n 2", ALICE)
            assert submission.queue == c.QUEUE_CLOUD
            event = await wait_for_result(cloud, submission.request_id)
            assert event.kind is EventKind.DONE, event.message
            day = day_of(runtime.service.admission.quotas.now())
            # 2 × gpt-image-1 high 1024x1536 = $0.50 of $0.60: a third image, even a square one ($0.167), won't fit
            assert int(await runtime.redis.get(BUDGET_KEY.format(day=day))) == 5000
            with pytest.raises(QuotaExceeded, match="budget for the paid image service is used up"):
                await runtime.service.imagine("a boat --n 1", ALICE)
        finally:
            await cloud.stop_workers()

        sent = openai_emulator.requests_to("/v1/images/generations")[0].body
        assert (sent["model"], sent["quality"], sent["size"], sent["n"]) == (
            "gpt-image-1",
            "high",
            "1024x1536",
            2,
        )
        (entry,) = await generated_entries(runtime.redis)
        assert entry["actor"] == "cli:alice" and entry["actor_name"] == "Alice"
        assert entry["target"] == submission.request_id
        assert entry["details"]["prompt"] == "a lighthouse" and entry["details"]["images"] == "2"
        assert entry["details"]["cost_usd"] == "0.5000" and entry["details"]["paid_size"] == "1024x1536"
        assert entry["details"]["paid_quality"] == "high" and entry["details"]["backend"] == "openai"
        stats = await StatsReader(runtime.redis).day(ALL, day)
        assert stats.spend_usd == pytest.approx(0.50) and stats.jobs == {"done": 1}
        assert stats.refusals == {"quota": 1}

        # The same job finishing again (a retry after a lapsed lease) audits nothing twice.
        worker = WorkerContext(
            settings=settings,
            queue_name=c.QUEUE_CLOUD,
            redis=runtime.redis,
            store=runtime.service.store,
            backends={},
            image_moderator=AllowAll(),
        )
        request = await runtime.service.queue.load(submission.request_id)
        await record_job(worker, request, event)
        assert len(await generated_entries(runtime.redis)) == 1


async def test_low_quality_costs_less_so_more_fits_in_the_same_budget(
    settings: Settings,
    openai_emulator: OpenAIEmulator,
    redis: Any,
) -> None:
    settings = paid_settings(settings, openai_emulator, "low", budget=0.05)
    async with open_runtime(settings) as runtime:
        cloud = Pipeline(runtime)
        await cloud.start_worker(c.QUEUE_CLOUD)
        try:
            for prompt in ("a fox --n 2", "a boat --n 1"):  # 3 × $0.011 = $0.033 of $0.05
                submission = await runtime.service.imagine(prompt, ALICE)
                assert (await wait_for_result(cloud, submission.request_id)).kind is EventKind.DONE
        finally:
            await cloud.stop_workers()
        day = day_of(runtime.service.admission.quotas.now())
        assert int(await runtime.redis.get(BUDGET_KEY.format(day=day))) == 330
        assert [
            body["quality"]
            for body in (r.body for r in openai_emulator.requests_to("/v1/images/generations"))
        ] == [
            "low",
            "low",
        ]
