"""The per-user history index: newest first, capped, paged by position and from a result on the page."""

from __future__ import annotations

import redis.asyncio as aioredis

from core.delivery.history import HistoryIndex
from core.keys import HISTORY_KEY, RESULT_TTL_S

OWNER = "telegram:1"


async def test_pages_run_newest_first_and_page_from_an_anchor_either_way(redis: aioredis.Redis) -> None:
    index = HistoryIndex(redis)
    for number in range(10):
        await index.add(OWNER, f"r{number}", at=1000.0 + number)
    first = await index.page(OWNER, 0, 4)
    assert first.request_ids == ("r9", "r8", "r7", "r6")
    assert (first.number, first.pages, first.has_newer, first.has_older) == (1, 3, False, True)
    second = await index.page_around(OWNER, "r6", older=True, size=4)
    assert second.request_ids == ("r5", "r4", "r3", "r2") and second.number == 2
    last = await index.page_around(OWNER, "r2", older=True, size=4)
    assert last.request_ids == ("r1", "r0") and not last.has_older and last.has_newer
    back = await index.page_around(OWNER, "r1", older=False, size=4)
    assert back.request_ids == ("r5", "r4", "r3", "r2")
    assert (await index.page_around(OWNER, "gone", older=True, size=4)).request_ids == first.request_ids
    assert 0 < await redis.ttl(HISTORY_KEY.format(owner=OWNER)) <= RESULT_TTL_S


async def test_the_index_keeps_the_newest_up_to_its_cap_and_a_result_saved_again_keeps_its_place(
    redis: aioredis.Redis,
) -> None:
    index = HistoryIndex(redis, kept=3)
    for number in range(5):
        await index.add(OWNER, f"r{number}", at=float(number))
    await index.add(OWNER, "r3", at=99.0)  # saved again after a partial delete: same place
    page = await index.page(OWNER, 0, 10)
    assert page.request_ids == ("r4", "r3", "r2") and page.total == 3
    await index.remove(OWNER, "r3")
    assert (await index.page(OWNER, 0, 10)).request_ids == ("r4", "r2")
    assert (await index.page("telegram:2", 0, 10)).request_ids == ()
