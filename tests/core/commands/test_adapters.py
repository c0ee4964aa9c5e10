"""--lora, --sampler, --control and --cw: the grammar against the operator's catalog, the community's own
restrictions (/admin lora), and refusals that charge nothing."""

from __future__ import annotations

import json

import pytest

from core import constants as c
from core.commands.adapters import lora_catalog
from core.commands.grammar import parse_imagine
from core.errors import InvalidRequest
from core.governance.audit import AUDIT_STREAM
from core.jobs.workers import WorkerInfo, WorkerRegistry
from core.models.privileges import Privilege
from core.models.request import LoraRef, Platform, Requester
from core.settings import AdapterSettings, LimitsSettings, Settings, updated
from tests.pipeline_fixture import Pipeline
from tests.settings import with_settings

CATALOG = AdapterSettings.model_validate(
    {
        "loras": {
            "glow": {"source": "/w/glow.safetensors", "family": "tiny", "trigger": "glowing"},
            "grain": {"source": "/w/grain.safetensors", "family": "tiny", "weight": 0.8},
            "xl-only": {"source": "someone/xl", "family": "sdxl"},
        },
        "control": {"models": {"tiny": {"canny": "/w/cn", "depth": "/w/depth"}}},
    }
)


def parse(text: str, model: str = "tiny", adapters: AdapterSettings = CATALOG):  # type: ignore[no-untyped-def]
    return parse_imagine(text, default_model=model, limits=LimitsSettings(), adapters=adapters)


def refusal(text: str, model: str = "tiny") -> InvalidRequest:
    with pytest.raises(InvalidRequest) as refused:
        parse(text, model)
    return refused.value


def test_loras_with_and_without_weights_and_their_trigger_words() -> None:
    options = parse("a cat --lora glow:0.5 --lora GRAIN on a mat")

    assert options.loras == (LoraRef(name="glow", weight=0.5), LoraRef(name="grain", weight=0.8))
    assert options.prompt == "glowing, a cat on a mat"
    assert parse("a glowing cat --lora glow").prompt == "a glowing cat"  # already there: not added twice


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("a cat --lora nope", ["“nope”", "glow, grain", "/loras"]),
        ("a cat --lora xl-only", ["made for sdxl", "doesn't fit tiny", "glow, grain"]),
        ("a cat --lora glow:3", ["from -2 to 2"]),
        ("a cat --lora glow:lots", ["--lora pixel-art:0.7"]),
        ("a cat --lora glow --lora glow:0.2", ["named twice"]),
        ("a cat --lora glow --lora grain --lora glow:1 --lora grain:1", ["at most 3"]),
    ],
)
def test_lora_mistakes_say_what_exists(text: str, words: list[str]) -> None:
    error = refusal(text)
    assert error.field == "lora"
    for word in words:
        assert word in error.message


def test_sampler_names_as_users_write_them() -> None:
    assert parse("a cat --sampler DPM++ 2M Karras at dusk").sampler == "dpm++ 2m karras"
    assert parse("a cat --sampler DPM++ 2M Karras at dusk").prompt == "a cat at dusk"
    assert parse("a cat --sampler dpm++ 2m").sampler == "dpm++ 2m"
    assert parse("a cat --sampler euler_a").sampler == "euler a"
    assert parse("a cat --sampler=UniPC").sampler == "unipc"
    assert parse("a cat --scheduler Euler a").sampler == "euler a"


def test_an_unknown_sampler_lists_the_names_and_turbo_models_keep_their_own() -> None:
    unknown = refusal("a cat --sampler heun")
    assert unknown.field == "sampler"
    assert "Euler, Euler a, DPM++ 2M, DPM++ 2M Karras, DDIM, UniPC, LCM" in unknown.message
    for model in ("sd-turbo", "sdxl-turbo", "flux-schnell", "dall-e-3"):
        own = refusal(f"a cat --model {model} --sampler euler")
        assert own.field == "sampler" and "needs its own sampler" in own.message


def test_control_kinds_need_a_controlnet_and_for_depth_and_pose_an_annotator() -> None:
    options = parse("a house --control Canny --cw 0.5")
    assert (options.control, options.control_weight) == ("canny", 0.5)
    assert parse("a house --control canny").control_weight == 1.0

    depth = refusal("a house --control depth")
    assert "no depth annotator" in depth.message and "tiny can use: canny" in depth.message
    assert "no pose ControlNet for tiny" in refusal("a house --control pose").message
    assert "one of: canny, depth, pose, scribble" in refusal("a house --control edges").message
    assert refusal("a house --control canny --cw 3").field == "cw"
    assert refusal("a house --cw 0.5").field == "cw"
    assert "no canny ControlNet for sdxl" in refusal("a house --control canny", "sdxl").message
    with_annotator = updated(CATALOG, {"control": {"depth_annotator": "/w/dpt"}})
    assert parse("a house --control depth", adapters=with_annotator).control == "depth"


def test_the_loras_list_shows_family_trigger_weight_and_what_is_off_here() -> None:
    text = lora_catalog(CATALOG, denied=["grain"])
    assert "• glow (for tiny, weight 1, adds “glowing”)" in text
    assert "• grain (for tiny, weight 0.8, turned off here)" in text
    assert "xl-only (for sdxl" in text
    assert lora_catalog(AdapterSettings()) == "There are no LoRAs on this bot."


GROUP = "-100"
USER = Requester(platform=Platform.TELEGRAM, user_id="1", chat_id=GROUP, community_id=GROUP)
MOD = USER.model_copy(update={"user_id": "2", "privilege": Privilege.MOD})


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return with_settings(settings, adapters=CATALOG)


async def test_moderators_turn_a_lora_off_here_audited_and_refusals_charge_nothing(
    pipeline: Pipeline,
) -> None:
    await WorkerRegistry(pipeline.runtime.redis).beat(WorkerInfo("w1", c.QUEUE_GPU, ("tiny",), 0.0))
    admin, service = pipeline.runtime.admin, pipeline.runtime.service

    assert "turned off here" in (await admin.execute("lora deny glow", MOD)).text
    with pytest.raises(InvalidRequest, match="turned off the LoRA “glow”"):
        await service.imagine("a cat --lora glow", USER)
    elsewhere = USER.model_copy(update={"community_id": "-200", "chat_id": "-200"})
    assert (await service.imagine("a cat --lora glow --n 1", elsewhere)).queue == c.QUEUE_GPU
    assert "glow" in (await admin.execute("lora list", MOD)).text
    with pytest.raises(InvalidRequest, match="The LoRAs on this bot: glow, grain, xl-only"):
        await admin.execute("lora deny nope", MOD)
    await admin.execute("lora allow glow", MOD)
    assert (await service.imagine("a cat --lora glow --n 1", USER)).queue == c.QUEUE_GPU

    with pytest.raises(InvalidRequest, match="attach one"):
        await service.imagine("a house --control canny", USER)
    with pytest.raises(InvalidRequest, match="--sampler"):
        await service.imagine("a house --sampler heun", USER)
    assert (
        await service.admission.quotas.status(USER)
    ).used_today == 2  # only the two requests that were allowed

    entries = await pipeline.runtime.redis.xrange(AUDIT_STREAM)
    actions = [json.loads(fields[b"entry"])["action"] for _, fields in entries]
    assert "lora_deny" in actions and "lora_allow" in actions
