"""One's own results on a real worker: /history pages, /info's command line and provenance, deleting one's own."""

from __future__ import annotations

import asyncio

import pytest

from core import constants as c
from core.commands.buttons import Button
from core.commands.grammar import parse_imagine
from core.delivery.events import follow
from core.errors import NotAllowed, NotFound, StorageError
from core.models.request import Platform, Requester
from core.models.result import EventKind, ResultEvent
from tests.pipeline_fixture import Pipeline

GROUP = "g1"
ALICE = Requester(platform=Platform.CLI, user_id="alice", chat_id=GROUP, community_id=GROUP)
BOB = Requester(platform=Platform.CLI, user_id="bob", chat_id=GROUP, community_id=GROUP)
STRANGER = Requester(platform=Platform.CLI, user_id="eve", chat_id="g2", community_id="g2")


async def finished(pipeline: Pipeline, request_id: str) -> ResultEvent:
    async with asyncio.timeout(90):
        async for event in follow(pipeline.runtime.redis, Platform.CLI):
            if event.request_id == request_id and event.terminal:
                assert event.kind is EventKind.DONE, event.message
                return event
    raise AssertionError("unreachable")


async def test_history_info_and_deleting_ones_own_result(pipeline: Pipeline) -> None:
    await pipeline.start_worker()
    service = pipeline.runtime.service
    made = []
    for prompt in ("a kite --n 1 --seed 11", "a boat --n 2", "a tree --n 1 --steps 3 --cfg 4.5 --no fog"):
        made.append(await finished(pipeline, (await service.imagine(prompt, ALICE)).request_id))

    history = await service.history(ALICE)
    assert [entry.request_id for entry in history.entries] == [e.request_id for e in reversed(made)]
    assert history.text().splitlines()[0] == "Your results, page 1 of 1:"
    assert "2. a boat · 2 image(s)" in history.text()
    assert (await service.history(BOB)).entries == ()

    tree = made[2]
    info = await service.info(tree.request_id, BOB)  # anyone in the community may read how it was made
    seed = tree.images[0].seed
    assert (
        info.command
        == f"/imagine a tree --no fog --size 64x64 --seed {seed} --steps 3 --cfg 4.5 --n 1 --model tiny"
    )
    options = parse_imagine(
        info.command.removeprefix("/imagine "), default_model="sdxl", limits=pipeline.settings.limits
    )
    assert (options.prompt, options.seed, options.steps, options.guidance, options.model) == (
        "a tree",
        seed,
        3,
        4.5,
        "tiny",
    )
    assert "Content Credentials: made by AI with tiny by imagebot" in info.provenance
    assert info.stored_parameters and f"Seed: {seed}" in info.stored_parameters
    with pytest.raises(NotAllowed):
        await service.info(tree.request_id, STRANGER)
    pressed = await service.press(Button(c.ACTION_INFO, tree.request_id), ALICE)
    assert pressed.info is not None and pressed.info.command == info.command

    boat = made[1]
    with pytest.raises(NotAllowed, match="/admin delete"):
        await service.delete(boat.request_id, BOB)
    deleted = (await service.press(Button(c.ACTION_DELETE, boat.request_id), ALICE)).deleted
    assert deleted is not None and deleted.outcome.deleted >= 2
    for image in boat.images:
        with pytest.raises(StorageError):
            await service.store.get(image.key)
    assert [e.request_id for e in (await service.history(ALICE)).entries] == [
        tree.request_id,
        made[0].request_id,
    ]
    with pytest.raises(NotFound):
        await service.info(boat.request_id, ALICE)
    audit = await pipeline.runtime.admin.audit.read(community=f"cli:{GROUP}", action="own_delete")
    assert audit[0].target == boat.request_id

    # The kite had an explicit seed, so it was cached; deleting it drops the cache entry too.
    await service.delete(made[0].request_id, ALICE)
    again = await service.imagine("a kite --n 1 --seed 11", ALICE)
    assert not again.cached


async def test_history_pages_with_its_buttons(pipeline: Pipeline) -> None:
    service = pipeline.runtime.service
    index = service.library.index
    from core.models.result import StoredImage

    ids = []
    for number in range(6):
        queued = await _stored(pipeline, f"picture {number}", StoredImage)
        ids.append(queued)
        await index.add("cli:alice", queued, at=100.0 + number)
    first = await service.history(ALICE)
    assert [e.request_id for e in first.entries] == ids[::-1][:4] and first.page.has_older
    older = (await service.press(Button(c.ACTION_HISTORY_OLDER, first.entries[-1].request_id), ALICE)).history
    assert older is not None and [e.request_id for e in older.entries] == ids[1::-1]
    newer = (await service.press(Button(c.ACTION_HISTORY_NEWER, older.entries[0].request_id), ALICE)).history
    assert newer is not None and [e.request_id for e in newer.entries] == ids[::-1][:4]
    shown = (await service.press(Button(c.ACTION_SHOW, ids[0]), ALICE)).shown
    assert shown is not None and shown.request_id == ids[0]
    with pytest.raises(NotAllowed):
        await service.show(ids[0], STRANGER)


async def _stored(pipeline: Pipeline, prompt: str, stored_image: type) -> str:
    """A finished one-image result of ALICE's, as a worker would have left it."""
    from core.models.ids import new_request_id
    from core.models.request import GenerationRequest

    service = pipeline.runtime.service
    request = GenerationRequest(
        request_id=new_request_id(), prompt=prompt, width=64, height=64, steps=2, guidance=5.0,
        seeds=(1,), model="tiny", requester=ALICE,
    )  # fmt: skip
    await service.queue.store(request)
    key = await service.store.put(prompt.encode(), "image/png")
    image = stored_image(key=key, url="file:///x.png", width=64, height=64, seed=1, index=0)
    await service.results.save(
        ResultEvent(kind=EventKind.DONE, request_id=request.request_id, requester=ALICE, images=(image,))
    )
    return request.request_id
