"""Retention of stored images: swept from a local folder, expired by lifecycle rules on S3 (settings.retention).

Redis keeps requests, results and audit entries for as long as the retention settings say through TTLs and
trimming (core.keys lists each). Stored images live outside Redis, so:

- **Local storage**: a sweeper, run by every worker every `sweep_interval_s`, deletes the files under `images/`,
  `inputs/` and `quarantine/` older than `images_days` — except an image a live result still shows (its reference
  set in Redis, which lives as long as the newest result showing it). Content-addressed files keep the time of
  their first write, so "older" means "first made longer ago".
- **S3**: at a worker's start-up, one lifecycle rule per prefix expires objects `images_days` after they were
  written (`<s3_prefix>/images/`, `…/inputs/`, `…/quarantine/`), and incomplete multipart uploads after a day.
  Rules are named `imagebot-retention-<prefix>`; other rules on the bucket are kept as they are. S3 counts from
  the object's creation, and a cache hit re-shows a stored file without writing it again, which is why results
  (and so the cache) may not outlive images (settings refuse `results_days` > `images_days`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from core.errors import StorageError
from core.keys import IMAGE_REFS_KEY
from core.settings import RetentionSettings, StorageSettings
from core.storage.local import LocalImageStore
from core.storage.protocol import INPUT_PREFIX, PUBLIC_PREFIX, QUARANTINE_PREFIX, ImageStore
from core.storage.s3 import S3ImageStore
from core.tasks import cancel_and_wait

log = logging.getLogger(__name__)

EXPIRING_PREFIXES = (PUBLIC_PREFIX, INPUT_PREFIX, QUARANTINE_PREFIX)
RULE_PREFIX = "imagebot-retention-"
_BATCH = 500  # reference checks per Redis round trip


@dataclass(frozen=True)
class SweepOutcome:
    deleted: int  # files removed
    still_shown: int  # old files a live result still shows, kept


def lifecycle_rules(s3_prefix: str, days: int) -> list[dict[str, Any]]:
    """The bucket's expiry rules for imagebot's prefixes (under the store's own prefix, if any)."""
    base = f"{s3_prefix.strip('/')}/" if s3_prefix.strip("/") else ""
    return [
        {
            "ID": f"{RULE_PREFIX}{prefix}",
            "Filter": {"Prefix": f"{base}{prefix}/"},
            "Status": "Enabled",
            "Expiration": {"Days": days},
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
        }
        for prefix in EXPIRING_PREFIXES
    ]


def _old_files(root: Path, max_age_s: float, now: float) -> list[tuple[str, Path]]:
    """(storage key, path) of the files under the expiring prefixes last written before now − max_age_s."""
    found = []
    for prefix in EXPIRING_PREFIXES:
        top = root / prefix
        if not top.is_dir():
            continue
        for folder, _, names in os.walk(top):
            for name in names:
                path = Path(folder) / name
                if name.startswith("."):  # a write in progress (.tmp-…)
                    continue
                with contextlib.suppress(FileNotFoundError):
                    if now - path.stat().st_mtime > max_age_s:
                        found.append((path.relative_to(root).as_posix(), path))
    return found


class ImageSweeper:
    """Deletes a local store's images older than the retention that no live result shows."""

    def __init__(self, store: LocalImageStore, redis: Redis, max_age_s: float) -> None:
        self.store = store
        self.redis = redis
        self.max_age_s = max_age_s

    async def sweep(self, now: float | None = None) -> SweepOutcome:
        now = time.time() if now is None else now
        old = await asyncio.to_thread(_old_files, self.store.root, self.max_age_s, now)
        deleted = shown = 0
        for start in range(0, len(old), _BATCH):
            batch = old[start : start + _BATCH]
            async with self.redis.pipeline(transaction=False) as pipe:
                for key, _ in batch:
                    pipe.exists(IMAGE_REFS_KEY.format(key=key))
                referenced = await pipe.execute()
            for (key, _), live in zip(batch, referenced, strict=True):
                if live:
                    shown += 1
                    continue
                await self.store.delete(key)
                deleted += 1
        if deleted or shown:
            log.info(
                "retention: deleted %d stored image(s) past their time; %d still shown, kept", deleted, shown
            )
        return SweepOutcome(deleted, shown)


class RetentionKeeper:
    """What a worker runs for retention: the S3 rules once at start-up, or the local sweeper on a timer."""

    def __init__(
        self, store: ImageStore, redis: Redis, retention: RetentionSettings, storage: StorageSettings
    ) -> None:
        self.store = store
        self.redis = redis
        self.retention = retention
        self.storage = storage
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if isinstance(self.store, S3ImageStore):
            if self.retention.apply_s3_lifecycle:
                rules = lifecycle_rules(self.storage.s3_prefix, self.retention.images_days)
                try:
                    await self.store.apply_lifecycle(rules, RULE_PREFIX)
                except StorageError as exc:  # e.g. no s3:PutLifecycleConfiguration: images still work
                    log.warning(
                        "retention: could not put the expiry rules on the bucket (%s); give the worker "
                        "s3:PutLifecycleConfiguration, or set IMAGEBOT_RETENTION__APPLY_S3_LIFECYCLE=false and "
                        "add them yourself (README, Retention)",
                        exc.message,
                    )
                    return
                log.info(
                    "retention: s3://%s expires images, uploads and quarantine after %d days",
                    self.store.bucket,
                    self.retention.images_days,
                )
            return
        if isinstance(self.store, LocalImageStore):
            sweeper = ImageSweeper(self.store, self.redis, self.retention.images_s)
            self._task = asyncio.create_task(self._sweep_every(sweeper), name="retention sweeper")

    async def _sweep_every(self, sweeper: ImageSweeper) -> None:
        while True:
            try:
                await sweeper.sweep()
            except asyncio.CancelledError:
                raise
            except Exception:  # a full disk, Redis away: try again next time
                log.exception("retention: the sweep of %s failed; trying again later", self.store)
            await asyncio.sleep(self.retention.sweep_interval_s)

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None
