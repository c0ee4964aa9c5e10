"""Style presets: the operator's and a community's, applied to the prompt before the prompt check reads it."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from core.errors import InvalidRequest, PromptRejected
from core.governance.styles import StyleBook, apply_style
from core.models.privileges import Privilege
from core.models.request import Platform, Requester
from core.settings import LimitsSettings, Settings, StylePreset
from tests.pipeline_fixture import Pipeline
from tests.settings import with_settings

WATERCOLOR = StylePreset(template="watercolor painting of {prompt}, soft edges", negative="photo, 3d")
GROUP = "-100"
ALICE = Requester(platform=Platform.TELEGRAM, user_id="1", chat_id=GROUP, community_id=GROUP)
MOD = ALICE.model_copy(update={"user_id": "2", "privilege": Privilege.MOD})
ELSEWHERE = Requester(platform=Platform.TELEGRAM, user_id="3", chat_id="-200", community_id="-200")


def test_a_template_holds_the_prompt_and_adds_its_negative_to_the_users() -> None:
    limits = LimitsSettings()
    assert apply_style(WATERCOLOR, "a fox", "", limits) == (
        "watercolor painting of a fox, soft edges",
        "photo, 3d",
    )
    assert apply_style(WATERCOLOR, "a fox", "people", limits)[1] == "people, photo, 3d"
    with pytest.raises(InvalidRequest, match="limit is 20"):
        apply_style(WATERCOLOR, "a fox", "", LimitsSettings(max_prompt_chars=20))


def test_settings_refuse_a_template_without_its_placeholder_and_bad_names() -> None:
    with pytest.raises(ValueError, match=r"\{prompt\}"):
        StylePreset(template="watercolor")
    with pytest.raises(ValueError, match="style names"):
        Settings(styles={"Water Colour": WATERCOLOR})


async def test_community_presets_live_in_their_community_and_unknown_names_list_what_exists(
    redis: aioredis.Redis, settings: Settings
) -> None:
    book = StyleBook(redis, with_settings(settings, styles={"watercolor": WATERCOLOR}))
    assert await book.add("telegram:-100", "Ink", "ink drawing of {prompt}", "colour") == "ink"
    assert [style.name for style in await book.all(ALICE)] == ["watercolor", "ink"]
    assert [style.name for style in await book.all(ELSEWHERE)] == ["watercolor"]
    assert (await book.get("ink", ALICE)).negative == "colour"
    with pytest.raises(InvalidRequest) as unknown:
        await book.get("ink", ELSEWHERE)
    assert unknown.value.message == "There is no style “ink”. Styles here: watercolor."
    with pytest.raises(InvalidRequest, match="bot's own styles"):
        await book.add("telegram:-100", "watercolor", "x {prompt}", "")
    with pytest.raises(InvalidRequest, match=r"\{prompt\}"):
        await book.add("telegram:-100", "bad", "no placeholder", "")
    assert await book.remove("telegram:-100", "INK") and not await book.remove("telegram:-100", "ink")


async def test_style_through_admin_and_imagine_applies_before_the_prompt_check(pipeline: Pipeline) -> None:
    service, admin = pipeline.runtime.service, pipeline.runtime.admin
    reply = await admin.execute(
        "style add ink ink drawing of {prompt}, cross-hatching --no colour, blur", MOD
    )
    assert reply.text == "Added the style “ink”: /imagine a fox --style ink"
    listed = await admin.execute("style list", MOD)
    assert (
        "ink (this community's): ink drawing of {prompt}, cross-hatching · avoids: colour, blur"
        in listed.text
    )
    assert [style.name for style in await service.list_styles(ALICE)] == ["ink"]
    with pytest.raises(InvalidRequest) as unknown:
        await service.precheck("a fox --style oil", ALICE)
    assert unknown.value.message == "There is no style “oil”. Styles here: ink."
    await admin.execute("block add hatching", MOD)  # a word only the template brings in
    with pytest.raises(PromptRejected):
        await service.precheck("a fox --style ink", ALICE)
    await admin.execute("block remove hatching", MOD)
    from core import constants as c
    from core.jobs.workers import WorkerInfo, WorkerRegistry

    await WorkerRegistry(pipeline.runtime.redis).beat(WorkerInfo("w", c.QUEUE_GPU, ("tiny",), 0.0))
    submitted = await service.imagine("a fox --style ink --no people", ALICE)
    request = await service.queue.load(submitted.request_id)
    assert request.prompt == "ink drawing of a fox, cross-hatching"
    assert request.negative_prompt == "people, colour, blur" and request.style == "ink"
    entries = await pipeline.runtime.admin.audit.read(community="telegram:-100", action="style_add")
    assert entries and entries[0].target == "ink"
    assert "removed" in (await admin.execute("style remove ink", MOD)).text.lower()
    with pytest.raises(InvalidRequest, match="Usage"):
        await admin.execute("style add onlyname", MOD)
