"""Defect 7: a moderator's delete removes only files no other request still shows (real worker, real Redis)."""

from __future__ import annotations

import asyncio

import pytest

from core.delivery.events import follow
from core.errors import StorageError
from core.models.privileges import Privilege
from core.models.request import Platform, Requester
from core.models.result import EventKind, ResultEvent
from tests.pipeline_fixture import Pipeline


def person(user_id: str, group: str, privilege: Privilege = Privilege.USER) -> Requester:
    return Requester(
        platform=Platform.CLI, user_id=user_id, chat_id=group, community_id=group, privilege=privilege
    )


ALICE, ALICES_MOD = person("alice", "g-a"), person("ann", "g-a", Privilege.MOD)
MALLORY, MALLORYS_MOD = person("mallory", "g-m"), person("mallory-mod", "g-m", Privilege.MOD)


async def finished(pipeline: Pipeline, request_id: str) -> ResultEvent:
    async with asyncio.timeout(60):
        async for event in follow(pipeline.runtime.redis, Platform.CLI):
            if event.request_id == request_id and event.terminal:
                assert event.kind is EventKind.DONE, event.message
                return event
    raise AssertionError("unreachable")


async def test_rerendering_a_seed_elsewhere_and_deleting_it_leaves_the_original_files(
    pipeline: Pipeline,
) -> None:
    await pipeline.start_worker()
    service, admin, store = pipeline.runtime.service, pipeline.runtime.admin, pipeline.runtime.service.store
    original = await finished(pipeline, (await service.imagine("a lighthouse --n 1", ALICE)).request_id)
    seed = original.images[0].seed
    # Mallory re-renders Alice's image in her own group with the seed from its caption: the same bytes, so the
    # same content-addressed files (not a cache hit: Alice's random seed was never cached).
    copy = await finished(
        pipeline, (await service.imagine(f"a lighthouse --n 1 --seed {seed}", MALLORY)).request_id
    )
    assert not copy.cached
    assert [image.key for image in copy.images] == [image.key for image in original.images]

    reply = await admin.execute(f"delete {copy.request_id}", MALLORYS_MOD)

    assert "also shown by other results, so they stay" in reply.text
    for image in (*original.images, original.grid, original.preview):
        if image is not None:
            assert await store.get(image.key)  # Alice's community still has its files
    assert (await service.result(copy.request_id)).images == ()  # the copy is gone for Mallory's group
    assert (await service.result(original.request_id)).images == original.images

    # When the last result that shows them goes, the files go.
    reply = await admin.execute(f"delete {original.request_id}", ALICES_MOD)
    assert reply.text.startswith("Deleted ")
    for image in original.images:
        with pytest.raises(StorageError):
            await store.get(image.key)


async def test_a_cache_hit_holds_its_own_reference(pipeline: Pipeline) -> None:
    await pipeline.start_worker()
    service, admin, store = pipeline.runtime.service, pipeline.runtime.admin, pipeline.runtime.service.store
    first = await finished(pipeline, (await service.imagine("a red kite --seed 3", ALICE)).request_id)
    hit = await finished(pipeline, (await service.imagine("a red kite --seed 3", MALLORY)).request_id)
    assert hit.cached and hit.images == first.images

    await admin.execute(f"delete {first.request_id}", ALICES_MOD)  # the original goes first this time

    assert await store.get(hit.images[0].key)  # Mallory's cached copy still shows it
    await admin.execute(f"delete {hit.request_id}", MALLORYS_MOD)
    with pytest.raises(StorageError):
        await store.get(hit.images[0].key)
