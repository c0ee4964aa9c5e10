"""Live previews: the latents' picture mid-render, image-checked before any user sees it.

The job runs as arq would call it, on the tiny model, with real Redis; the image check is plugged in through our
own ImageModerator seam, so a test can refuse (or fail on) exactly the previews — JPEGs — and let the PNGs through.
"""

from __future__ import annotations

import base64
import io
import json
from typing import Any

import pytest
import torch
from PIL import Image

from core import constants as c
from core.delivery.events import stream_key
from core.governance.preferences import PreferenceStore
from core.keys import PREFS_KEY
from core.models.catalog import BackendKind, Family
from core.models.request import Platform, Requester
from core.models.result import LIVE_PREVIEW_MAX_CHARS, EventKind, ResultEvent
from core.models.verdict import Outcome, Verdict
from core.settings import Settings
from core.storage.factory import build_store
from tests.pipeline_fixture import Pipeline
from tests.settings import with_settings
from worker.context import WorkerContext
from worker.diffusers_backend import DiffusersBackend
from worker.jobs import generate
from worker.latent_preview import fit, latent_map
from worker.live_preview import DATA_URL_PREFIX, encode_live_preview
from worker.registry import ModelRegistry

ALICE = Requester(platform=Platform.CLI, user_id="alice", chat_id="c")
JPEG = b"\xff\xd8\xff"


class PreviewCheck:
    """Lets the final PNGs through and does `to_previews` ("allow", "refuse" or "fail") to the JPEG previews."""

    def __init__(self, to_previews: str) -> None:
        self.to_previews = to_previews
        self.previews_checked = 0

    async def check_prompt(self, prompt: str, negative_prompt: str, community_id: str | None) -> Verdict:
        return Verdict.allow(prompt)

    async def check_image(self, image: bytes) -> Verdict:
        if not image.startswith(JPEG) or self.to_previews == "allow":
            self.previews_checked += image.startswith(JPEG)
            return Verdict(Outcome.ALLOWED)
        self.previews_checked += 1
        if self.to_previews == "fail":
            raise RuntimeError("the image check is down")
        return Verdict(Outcome.REFUSED, categories=("nsfw",), reason_code="nsfw")


def test_the_tiny_models_map_shows_the_colours_its_vae_would_decode(tiny_registry: ModelRegistry) -> None:
    """The tiny VAE has random weights (it does not give red back for red), so the map is judged against the
    VAE's own decoder: on the latents of an encoded red picture, the preview's colour is the decoder's."""
    loaded = tiny_registry.get("tiny")
    assert loaded is not None
    vae = loaded.text2img.vae
    mapping = fit(vae)
    red = torch.full((1, 3, 64, 64), -1.0)
    red[:, 0] = 1.0
    scale = vae.config.scaling_factor
    with torch.inference_mode():
        latents = vae.encode(red).latent_dist.mean * scale
        decoded = vae.decode(latents / scale).sample.clamp(-1, 1)
    picture = mapping.image(latents)
    assert picture.size == (latents.shape[3], latents.shape[2])  # one pixel per latent
    shown = picture.resize((1, 1), Image.Resampling.BOX).getpixel((0, 0))
    expected = ((decoded.mean(dim=(0, 2, 3)) + 1) * 127.5).round().int().tolist()
    assert all(abs(a - b) <= 12 for a, b in zip(shown, expected, strict=True)), (shown, expected)  # type: ignore[arg-type]


def test_the_sd_maps_need_no_weights_and_flux_has_none() -> None:
    sd = latent_map(Family.SD15, None)
    xl = latent_map(Family.SDXL, None)
    assert sd is not None and xl is not None and latent_map(Family.FLUX, None) is None
    latents = torch.zeros(2, 4, 64, 96)  # the first of two SD 512×768 latents
    latents[0, 3] = -2.0  # SD's fourth channel pushes towards blue
    picture = sd.image(latents)
    assert picture.size == (96, 64)
    r, g, b = picture.getpixel((10, 10))  # type: ignore[misc]
    assert b > r and b > g and xl.image(torch.zeros(1, 4, 8, 8)).size == (8, 8)


def test_a_live_preview_fits_a_progress_event_at_the_requests_aspect() -> None:
    noise = Image.effect_noise((64, 96), 100).convert("RGB")  # noise compresses worst
    data = encode_live_preview(noise, (512, 768), 256)
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "JPEG" and image.size == (171, 256)
    assert len(DATA_URL_PREFIX) + len(base64.b64encode(data)) <= LIVE_PREVIEW_MAX_CHARS


async def _render(
    pipeline: Pipeline,
    tiny_registry: ModelRegistry,
    check: PreviewCheck,
    settings: Settings | None = None,
    command: str = "a red boat --n 1 --steps 8 --seed 3",
) -> list[ResultEvent]:
    """One /imagine on `tiny` through the worker's job, with `check` as the image check; its events."""
    from core.jobs.workers import WorkerInfo, WorkerRegistry

    settings = settings or pipeline.settings
    deps = WorkerContext(
        settings=settings,
        queue_name=c.QUEUE_GPU,
        redis=pipeline.runtime.redis,
        store=build_store(settings),
        backends={BackendKind.DIFFUSERS: DiffusersBackend(tiny_registry)},
        image_moderator=check,
    )
    await WorkerRegistry(pipeline.runtime.redis).beat(WorkerInfo("w", c.QUEUE_GPU, ("tiny",), 0.0))
    submitted = await pipeline.runtime.service.imagine(command, ALICE)
    ctx: dict[str, Any] = {"imagebot": deps, "job_try": 1}
    outcome = await generate(ctx, submitted.request_id)
    assert outcome == "done"
    entries = await pipeline.runtime.redis.xrange(stream_key(Platform.CLI))
    events = [ResultEvent.model_validate_json(fields[b"event"]) for _, fields in entries]
    return [event for event in events if event.request_id == submitted.request_id]


async def test_a_real_render_publishes_a_checked_live_preview_before_its_result(
    pipeline: Pipeline, tiny_registry: ModelRegistry
) -> None:
    check = PreviewCheck("allow")
    events = await _render(pipeline, tiny_registry, check)
    previews = [event for event in events if event.live_preview is not None]
    assert previews and check.previews_checked == len(previews)  # every one shown was checked first
    first = previews[0]
    assert first.kind is EventKind.PROGRESS and first.step is not None and first.total_steps == 8
    assert 2 <= first.step < 8  # from a quarter of the steps, never after the last
    assert first.live_preview is not None and first.live_preview.startswith(DATA_URL_PREFIX)
    data = base64.b64decode(first.live_preview.removeprefix(DATA_URL_PREFIX))
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "JPEG" and image.size == (64, 64)  # the tiny request's size, under 256
    kinds = [event.kind for event in events]
    assert kinds[-1] is EventKind.DONE and events.index(first) < len(events) - 1
    done = events[-1]
    assert done.live_preview is None and done.preview is not None  # DONE keeps its own chat preview


@pytest.mark.parametrize("to_previews", ["refuse", "fail"])
async def test_a_preview_the_image_check_refuses_or_cannot_check_is_not_published(
    pipeline: Pipeline, tiny_registry: ModelRegistry, to_previews: str
) -> None:
    check = PreviewCheck(to_previews)
    events = await _render(pipeline, tiny_registry, check)
    assert check.previews_checked >= 1  # a preview was made and checked…
    assert [event for event in events if event.live_preview is not None] == []  # …and nobody saw it
    assert EventKind.PROGRESS in {event.kind for event in events}  # progress itself still came through
    assert events[-1].kind is EventKind.DONE


async def test_no_previews_when_the_operator_turns_them_off(
    pipeline: Pipeline, tiny_registry: ModelRegistry
) -> None:
    settings = with_settings(pipeline.settings, worker={"live_previews": False})
    check = PreviewCheck("allow")
    events = await _render(pipeline, tiny_registry, check, settings)
    assert check.previews_checked == 0 and all(event.live_preview is None for event in events)


async def test_no_previews_for_a_user_who_turned_them_off(
    pipeline: Pipeline, tiny_registry: ModelRegistry
) -> None:
    """/settings' live previews off: the worker makes none for that user's render (nothing decoded or checked), the
    progress and the result still come; turned back on, the next render shows them again."""
    store = PreferenceStore(pipeline.runtime.redis)
    await store.update(Platform.CLI, ALICE.user_id, previews=False)
    check = PreviewCheck("allow")
    events = await _render(pipeline, tiny_registry, check)
    assert check.previews_checked == 0 and all(event.live_preview is None for event in events)
    assert EventKind.PROGRESS in {event.kind for event in events} and events[-1].kind is EventKind.DONE

    await store.update(Platform.CLI, ALICE.user_id, previews=True)
    again = await _render(pipeline, tiny_registry, check, command="a blue boat --n 1 --steps 8 --seed 4")
    assert check.previews_checked >= 1 and any(event.live_preview is not None for event in again)


async def test_a_preferences_record_this_version_cannot_read_leaves_previews_on(
    pipeline: Pipeline, tiny_registry: ModelRegistry
) -> None:
    """A newer version's record (a field this one doesn't know) doesn't fail the render: previews stay on."""
    key = PREFS_KEY.format(platform=Platform.CLI, user_id=ALICE.user_id)
    await pipeline.runtime.redis.set(key, json.dumps({"previews": False, "from_the_future": 1}))
    check = PreviewCheck("allow")
    events = await _render(pipeline, tiny_registry, check)
    assert events[-1].kind is EventKind.DONE and any(event.live_preview is not None for event in events)
