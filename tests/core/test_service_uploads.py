"""ImagineService with uploads (defects 14, 15, 36): check first, then fetch; store only what is queued.

Real Redis and local storage; the fetchers here are real download functions that record that they ran.
"""

from __future__ import annotations

import asyncio
import io
import time
import zlib
from pathlib import Path

import pytest
from PIL import Image

from core import constants as c
from core.errors import InvalidRequest, NotAllowed, PromptRejected, QuotaExceeded
from core.governance.community import community_key
from core.governance.quotas import owner_id
from core.jobs.workers import WorkerInfo, WorkerRegistry
from core.models.request import Mode, Platform, Requester
from core.service import ImagineService
from tests.pipeline_fixture import Pipeline

ALICE = Requester(platform=Platform.TELEGRAM, user_id="alice", chat_id="-42", community_id="-42")


def png(seed: int, size: tuple[int, int] = (96, 64)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (seed % 256, 80, 40)).save(buffer, "PNG")
    return buffer.getvalue()


def bomb_png(width: int, height: int) -> bytes:
    """A valid 1-bit PNG of `width`×`height` black pixels: a few kilobytes that would decode to megabytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")

    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([1, 0, 0, 0, 0])  # 1 bit, grey
    compressor = zlib.compressobj(9)
    row = b"\0" + bytes((width + 7) // 8)  # filter byte + packed pixels
    data = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


class RecordingFetcher:
    """A download function for one upload that records each time it is called."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.calls = 0

    async def __call__(self) -> bytes:
        self.calls += 1
        return self.data


def stored_inputs(pipeline: Pipeline) -> list[Path]:
    root = pipeline.settings.storage.local_dir / "inputs"
    return sorted(path for path in root.rglob("*") if path.is_file()) if root.exists() else []


async def announce_busy_worker(pipeline: Pipeline) -> None:
    """A worker elsewhere serves tiny but takes no jobs now, so accepted requests stay queued."""
    await WorkerRegistry(pipeline.runtime.redis).beat(
        WorkerInfo("elsewhere", c.QUEUE_GPU, ("tiny",), started_at=time.time())
    )


async def used_today(service: ImagineService) -> int:
    return (await service.admission.quotas.status(ALICE)).used_today


async def test_ten_img2img_commands_refused_by_the_quota_store_and_fetch_nothing(pipeline: Pipeline) -> None:
    service = pipeline.runtime.service
    await announce_busy_worker(pipeline)
    accepted = await service.imagine("as a sketch --n 1", ALICE, source_id="m0", source_image=png(0))
    await service.admission.quotas.set_daily_override(owner_id(ALICE), 1)  # that was the last one today
    fetchers = [RecordingFetcher(png(index)) for index in range(1, 11)]
    for index, fetcher in enumerate(fetchers, start=1):
        with pytest.raises(QuotaExceeded, match="images for today"):
            await service.imagine("as a sketch --n 1", ALICE, source_id=f"m{index}", source_image=fetcher)
    assert [fetcher.calls for fetcher in fetchers] == [0] * 10  # refused before anything was downloaded
    request = await service.queue.load(accepted.request_id)
    assert [
        path.relative_to(pipeline.settings.storage.local_dir).as_posix() for path in stored_inputs(pipeline)
    ] == [request.source_image]


async def test_refused_reservations_leave_no_input_behind(pipeline: Pipeline) -> None:
    # Ten at once, all past the pre-check: the atomic reservation admits two (jobs in flight), and only
    # those two inputs are stored.
    service = pipeline.runtime.service
    await announce_busy_worker(pipeline)
    outcomes = await asyncio.gather(
        *(
            service.imagine("as a sketch --n 1", ALICE, source_id=f"m{index}", source_image=png(index))
            for index in range(10)
        ),
        return_exceptions=True,
    )
    queued = [outcome for outcome in outcomes if not isinstance(outcome, BaseException)]
    refused = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
    assert len(queued) == 2 and all(isinstance(error, QuotaExceeded) for error in refused)
    sources = sorted([(await service.queue.load(s.request_id)).source_image or "" for s in queued])
    root = pipeline.settings.storage.local_dir
    assert [path.relative_to(root).as_posix() for path in stored_inputs(pipeline)] == sources


async def refuse_by_ban(service: ImagineService) -> None:
    await service.admission.bans.ban(owner_id(ALICE), "spam", by="mod")


async def refuse_by_pause(service: ImagineService) -> None:
    await service.admission.communities.pause(community_key(Platform.TELEGRAM, "-42"), True)


async def refuse_by_quota(service: ImagineService) -> None:
    await service.admission.quotas.set_daily_override(owner_id(ALICE), 0)


async def no_refusal(service: ImagineService) -> None:
    return None


@pytest.mark.parametrize(
    ("setup", "text", "error"),
    [
        (refuse_by_ban, "as a sketch", NotAllowed),
        (refuse_by_pause, "as a sketch", NotAllowed),
        (refuse_by_quota, "as a sketch", QuotaExceeded),
        (no_refusal, "nakedchild", PromptRejected),
        (no_refusal, "as a sketch --steps 0", InvalidRequest),
        (no_refusal, "as a sketch --model dalle", InvalidRequest),  # can't start from an image
        (no_refusal, "\u200b\u200b --n 4", InvalidRequest),  # nothing visible (defect 36)
    ],
)
async def test_a_refused_command_never_fetches_its_upload(
    pipeline: Pipeline, setup: object, text: str, error: type[Exception]
) -> None:
    service = pipeline.runtime.service
    await announce_busy_worker(pipeline)
    await setup(service)  # type: ignore[operator]
    fetcher = RecordingFetcher(png(1))
    with pytest.raises(error):
        await service.precheck(text, ALICE, with_image=True)
    with pytest.raises(error):
        await service.imagine(text, ALICE, source_id="m1", source_image=fetcher)
    assert fetcher.calls == 0
    assert stored_inputs(pipeline) == []
    assert await used_today(service) == 0


async def test_an_accepted_command_fetches_once_and_stores_its_input(pipeline: Pipeline) -> None:
    service = pipeline.runtime.service
    await announce_busy_worker(pipeline)
    options = await service.precheck("as a sketch --n 1", ALICE, source_id="m1", with_image=True)
    assert options.n == 1 and await used_today(service) == 0  # the pre-check reserves nothing
    fetcher = RecordingFetcher(png(7))
    submission = await service.imagine("as a sketch --n 1", ALICE, source_id="m1", source_image=fetcher)
    request = await service.queue.load(submission.request_id)
    assert fetcher.calls == 1 and request.mode is Mode.IMG2IMG
    assert request.source_image and await service.store.get(request.source_image) == png(7)
    assert await used_today(service) == 1

    # The same message delivered again: not charged, not refused by the quota it already holds.
    await service.admission.quotas.set_daily_override(owner_id(ALICE), 1)
    again = await service.imagine(
        "as a sketch --n 1", ALICE, source_id="m1", source_image=RecordingFetcher(png(7))
    )
    assert again.duplicate and again.request_id == submission.request_id
    assert await used_today(service) == 1
    assert len(stored_inputs(pipeline)) == 1


async def test_a_decompression_bomb_is_refused_before_it_is_decoded_or_stored(pipeline: Pipeline) -> None:
    service = pipeline.runtime.service
    await announce_busy_worker(pipeline)
    bomb = bomb_png(8192, 8192)
    assert len(bomb) < 64 * 1024  # small on disk …
    with pytest.raises(
        InvalidRequest, match=r"8192×8192 \(67,108,864 pixels\).*16,777,216 pixels"
    ) as refused:
        await service.imagine("as a sketch --n 1", ALICE, source_id="m1", source_image=bomb)
    assert refused.value.field == "image"
    assert stored_inputs(pipeline) == []
    assert await used_today(service) == 0


async def test_the_pre_check_refuses_a_third_job_in_flight_like_the_reservation(pipeline: Pipeline) -> None:
    service = pipeline.runtime.service
    await announce_busy_worker(pipeline)
    for index in range(2):  # the free tier runs two jobs at once
        await service.imagine("a lighthouse --n 1", ALICE, source_id=f"m{index}")
    fetcher = RecordingFetcher(png(3))
    with pytest.raises(QuotaExceeded, match="2 jobs running"):
        await service.imagine("as a sketch --n 1", ALICE, source_id="m3", source_image=fetcher)
    assert fetcher.calls == 0 and await used_today(service) == 2
