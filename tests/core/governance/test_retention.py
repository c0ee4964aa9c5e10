"""Retention: Redis TTLs from the settings, audit trimming, the local image sweeper, and S3 lifecycle rules put on
a real bucket (moto's server) with boto3."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import redis.asyncio as aioredis
from pydantic import ValidationError

from core.delivery.result_store import ResultStore
from core.governance.audit import AuditAction, AuditEntry, AuditLog
from core.governance.retention import RULE_PREFIX, ImageSweeper, RetentionKeeper, lifecycle_rules
from core.jobs.queue import JobQueue
from core.keys import AUDIT_STREAM, IMAGE_REFS_KEY, REQUEST_KEY, RESULT_KEY, USER_REQUESTS_KEY
from core.models.request import GenerationRequest, Platform, Requester
from core.models.result import EventKind, ResultEvent
from core.settings import RetentionSettings, Settings, StorageSettings
from core.storage.local import LocalImageStore
from core.storage.s3 import S3ImageStore

if TYPE_CHECKING:
    from types_boto3_s3 import S3Client

DAY = 86400
ALICE = Requester(platform=Platform.CLI, user_id="alice", chat_id="c")


def request(request_id: str = "abcdefghijklmnop") -> GenerationRequest:
    return GenerationRequest(
        request_id=request_id,
        prompt="a fox",
        width=64,
        height=64,
        steps=2,
        guidance=1.0,
        seeds=(1,),
        model="tiny",
        requester=ALICE,
    )


def stored_files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_defaults_and_a_result_may_not_outlive_its_images() -> None:
    retention = Settings().retention
    assert (retention.images_days, retention.requests_days, retention.results_days) == (30, 30, 30)
    assert (retention.audit_days, retention.stats_days) == (365, 14)
    with pytest.raises(ValidationError, match=r"results_days \(40\) is longer than images_days \(30\)"):
        RetentionSettings(results_days=40)


async def test_requests_and_results_live_as_long_as_the_settings_say(redis: aioredis.Redis) -> None:
    retention = RetentionSettings(requests_days=2, results_days=3, images_days=3)
    queue = JobQueue(redis, ttl_s=retention.requests_s)  # type: ignore[arg-type]
    await queue.store(request())
    await queue.remember("cli:alice", "abcdefghijklmnop")
    await ResultStore(redis, ttl_s=retention.results_s).save(
        ResultEvent(kind=EventKind.FAILED, request_id="abcdefghijklmnop", requester=ALICE)
    )
    assert await redis.ttl(REQUEST_KEY.format(request_id="abcdefghijklmnop")) == pytest.approx(2 * DAY, abs=5)
    assert await redis.ttl(USER_REQUESTS_KEY.format(owner="cli:alice")) == pytest.approx(2 * DAY, abs=5)
    assert await redis.ttl(RESULT_KEY.format(request_id="abcdefghijklmnop")) == pytest.approx(3 * DAY, abs=5)
    assert await queue.every_request("cli:alice") == ["abcdefghijklmnop"]


async def test_audit_entries_older_than_the_retention_are_trimmed(redis: aioredis.Redis) -> None:
    old = int((time.time() - 10 * DAY) * 1000)
    await redis.xadd(
        AUDIT_STREAM,
        {"entry": AuditEntry(actor="system", action=AuditAction.PAUSE).model_dump_json()},
        id=f"{old}-0",
    )
    recent = int((time.time() - 2 * DAY) * 1000)
    await redis.xadd(
        AUDIT_STREAM,
        {"entry": AuditEntry(actor="system", action=AuditAction.RESUME).model_dump_json()},
        id=f"{recent}-0",
    )
    await AuditLog(redis, keep_s=7 * DAY).record(AuditEntry(actor="system", action=AuditAction.BAN))
    actions = [entry.action for entry in await AuditLog(redis).read()]
    assert actions == [AuditAction.BAN, AuditAction.RESUME]  # newest first; the 10-day-old one is gone


async def test_the_local_sweeper_deletes_old_images_nobody_shows_any_more(
    redis: aioredis.Redis, tmp_path: Path
) -> None:
    store = LocalImageStore(tmp_path)
    png = b"\x89PNG old"
    old_unused = await store.put(png + b"1", "image/png")
    old_shown = await store.put(png + b"2", "image/png")
    old_upload = await store.put(png + b"3", "image/png", prefix="inputs")
    old_quarantined = await store.put(png + b"4", "image/png", prefix="quarantine")
    fresh = await store.put(png + b"5", "image/png")
    month_ago = time.time() - 31 * DAY
    for key in (old_unused, old_shown, old_upload, old_quarantined):
        os.utime(tmp_path / key, (month_ago, month_ago))
    await redis.sadd(IMAGE_REFS_KEY.format(key=old_shown), "someresultid0000")

    outcome = await ImageSweeper(store, redis, 30 * DAY).sweep()

    assert (outcome.deleted, outcome.still_shown) == (3, 1)
    assert stored_files(tmp_path) == sorted([old_shown, fresh])


async def test_s3_lifecycle_rules_are_put_on_the_bucket_beside_other_rules(
    s3_server: str, s3_bucket: str, s3_client: S3Client, redis: aioredis.Redis
) -> None:
    foreign = {
        "ID": "logs-expire",
        "Filter": {"Prefix": "logs/"},
        "Status": "Enabled",
        "Expiration": {"Days": 3},
    }
    s3_client.put_bucket_lifecycle_configuration(
        Bucket=s3_bucket, LifecycleConfiguration={"Rules": [foreign]}
    )
    storage = StorageSettings(backend="s3", s3_bucket=s3_bucket, s3_prefix="bot1", s3_endpoint_url=s3_server)
    store = S3ImageStore(
        s3_bucket, prefix="bot1", endpoint_url=s3_server, region="us-east-1", addressing_style="path"
    )
    try:
        for days in (45, 20):  # a second start with another retention replaces our rules, not adds to them
            keeper = RetentionKeeper(
                store, redis, RetentionSettings(images_days=days, results_days=days), storage
            )
            await keeper.start()
            await keeper.stop()
    finally:
        await store.close()

    rules = {
        rule["ID"]: rule for rule in s3_client.get_bucket_lifecycle_configuration(Bucket=s3_bucket)["Rules"]
    }
    assert set(rules) == {"logs-expire", *(f"{RULE_PREFIX}{p}" for p in ("images", "inputs", "quarantine"))}
    images = rules[f"{RULE_PREFIX}images"]
    assert images["Expiration"]["Days"] == 20 and images["Status"] == "Enabled"
    assert images["Filter"]["Prefix"] == "bot1/images/"
    assert images["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] == 1
    assert rules["logs-expire"]["Expiration"]["Days"] == 3


def test_lifecycle_rules_without_a_store_prefix() -> None:
    assert [rule["Filter"]["Prefix"] for rule in lifecycle_rules("", 30)] == [
        "images/",
        "inputs/",
        "quarantine/",
    ]
