"""Which chat message shows a request's live preview: one photo per request, and the end wins every race."""

from __future__ import annotations

import redis.asyncio as aioredis

from core.delivery.preview_message import PreviewMessages
from core.keys import PREVIEW_ENDED_TTL_S, PREVIEW_MESSAGE_KEY, PREVIEW_MESSAGE_TTL_S


async def test_one_process_starts_the_photo_and_the_end_finds_it(redis: aioredis.Redis) -> None:
    first, second = PreviewMessages(redis, "telegram"), PreviewMessages(redis, "telegram")  # two bot replicas
    assert await first.claim("r1") and not await second.claim("r1")
    assert await second.shown("r1") is None  # being sent: nobody edits it yet
    assert await first.record("r1", "42")
    assert await second.shown("r1") == "42"
    key = PREVIEW_MESSAGE_KEY.format(platform="telegram", request_id="r1")
    assert PREVIEW_ENDED_TTL_S < await redis.ttl(key) <= PREVIEW_MESSAGE_TTL_S  # while Telegram lets it go
    assert await second.end("r1") == "42"
    assert await first.end("r1") == "42"  # a retried delivery finds it again until it is removed
    assert await first.shown("r1") == "42"
    await first.forget("r1")
    assert await first.end("r1") is None and not await first.claim(
        "r1"
    )  # ended: a late preview starts nothing
    assert 0 < await redis.ttl(key) <= PREVIEW_ENDED_TTL_S  # the ended mark is short-lived


async def test_an_end_while_the_photo_is_on_its_way_makes_its_sender_remove_it(redis: aioredis.Redis) -> None:
    previews = PreviewMessages(redis, "telegram")
    assert await previews.claim("r1")
    assert await previews.end("r1") is None  # the result goes out; the photo isn't known yet
    assert not await previews.record("r1", "42")  # so its sender deletes it
    assert await previews.shown("r1") is None and not await previews.claim("r1")


async def test_a_photo_that_could_not_be_sent_gives_the_claim_back(redis: aioredis.Redis) -> None:
    previews = PreviewMessages(redis, "telegram")
    assert await previews.claim("r1")
    await previews.release("r1")
    assert await previews.claim("r1")  # the next preview tries again
    await previews.end("r1")
    await previews.release("r1")  # too late: ended stays ended
    assert not await previews.claim("r1")
    assert await PreviewMessages(redis, "discord").claim("r1")  # platforms are apart
