"""Every edit mode through the real job path: service.submit → Redis/arq → worker (tiny, a saved ESRGAN) → image
check → signed storage → result event; refusals refunded. The chat side (buttons, --region) builds these same
requests; here they are built directly from a finished parent, as its press handlers do."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from core.commands.canvas import outpaint_placement
from core.models.catalog import get_model
from core.models.ids import new_request_id
from core.models.request import Canvas, GenerationRequest, Mode
from core.models.result import EventKind, ResultEvent, StoredImage
from core.settings import Settings, UpscalerSettings
from core.storage.protocol import INPUT_PREFIX
from moderation.provenance import read_manifest
from tests.drawings import figure
from tests.pipeline_fixture import Pipeline
from tests.settings import with_settings
from tests.worker.test_edits import ellipse_mask, png
from tests.worker.test_pipeline import ALICE, wait_for_result
from tests.worker.test_upscaler import save_esrgan
from worker.edits import PLAIN_RESIZE_NOTE
from worker.postprocess import read_png_parameters
from worker.provenance import Provenance

TINY = get_model("tiny")


def edit(parent: ResultEvent, source: StoredImage, mode: Mode, **fields: object) -> GenerationRequest:
    values: dict[str, object] = {
        "request_id": new_request_id(),
        "prompt": "a castle on a hill",
        "width": source.width,
        "height": source.height,
        "steps": 2,
        "guidance": 5.0,
        "seeds": (5,),
        "seed_explicit": True,
        "model": "tiny",
        "mode": mode,
        "source_image": source.key,
        "parent_id": parent.request_id,
        "parent_index": 0,
        "requester": fields.pop("requester", ALICE),
    }
    values.update(fields)
    return GenerationRequest(**values)  # type: ignore[arg-type]


async def run(pipeline: Pipeline, request: GenerationRequest) -> ResultEvent:
    submission = await pipeline.runtime.service.submit(request)
    return await wait_for_result(pipeline, submission.request_id, timeout_s=300)


def with_upscaler(settings: Settings, folder: Path) -> Settings:
    weights = save_esrgan(folder / "RealESRGAN_x2-tiny.pth", 2)
    upscaler = UpscalerSettings(model=str(weights), tile=32, tile_overlap=8, detail_overlap=16)
    return with_settings(settings, upscaler=upscaler)


async def test_every_edit_mode_is_rendered_stored_signed_as_an_edit_and_cacheable(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    await pipeline.start_worker(settings=with_upscaler(pipeline.settings, tmp_path))
    service, store = pipeline.runtime.service, pipeline.runtime.service.store
    trust = Provenance(pipeline.settings.provenance, pipeline.settings.data_dir).trust_anchors_pem
    parent = await wait_for_result(
        pipeline, (await service.imagine("a castle --seed 11 --n 1", ALICE)).request_id
    )
    source = parent.images[0]
    source_bytes = await store.get(source.key)
    mask = ellipse_mask((source.width, source.height), (8, 8, 40, 56))
    mask_key = await store.put(png(mask), "image/png", prefix=INPUT_PREFIX)

    zoom = outpaint_placement(TINY, source.width, source.height, Canvas(zoom=2.0))
    pan = outpaint_placement(TINY, source.width, source.height, Canvas(pan="left", pan_fraction=0.5))
    requests = {
        "inpaint": edit(parent, source, Mode.INPAINT, mask_image=mask_key, strength=1.0),
        "zoom": edit(parent, source, Mode.OUTPAINT, canvas=Canvas(zoom=2.0), strength=1.0),
        "pan": edit(
            parent,
            source,
            Mode.OUTPAINT,
            canvas=Canvas(pan="left", pan_fraction=0.5),
            strength=1.0,
            width=pan.width,
            height=pan.height,
        ),
        "subtle": edit(parent, source, Mode.UPSCALE_SUBTLE, upscale_factor=2, width=128, height=128),
        "creative": edit(
            parent, source, Mode.UPSCALE_CREATIVE, upscale_factor=2, strength=0.5, width=128, height=128
        ),
    }
    made: dict[str, Image.Image] = {}
    for name, request in requests.items():
        event = await run(pipeline, request)
        assert event.kind is EventKind.DONE, (name, event.message)
        assert PLAIN_RESIZE_NOTE not in (event.message or "")
        [stored] = event.images
        data = await store.get(stored.key)
        manifest = read_manifest(data, "image/png", trust)
        assert manifest is not None and manifest.signed_ok, name
        assert manifest.actions == ("c2pa.opened", "c2pa.edited"), name
        [ingredient] = manifest.ingredients
        assert ingredient["relationship"] == "parentOf"
        assert read_png_parameters(data)["mode"] == request.mode.value  # with what makes it again
        with Image.open(io.BytesIO(data)) as image:
            made[name] = image.convert("RGB")
            assert image.size == (request.width, request.height) == (stored.width, stored.height)

    with Image.open(io.BytesIO(source_bytes)) as opened:
        original = opened.convert("RGB")
    keep = np.asarray(mask) == 0
    assert (np.asarray(made["inpaint"])[keep] == np.asarray(original)[keep]).all()
    middle = original.resize((zoom.source_width, zoom.source_height), Image.Resampling.LANCZOS)
    assert made["zoom"].crop(zoom.box).tobytes() == middle.tobytes()
    assert made["pan"].crop(pan.box).tobytes() == original.tobytes()
    pan_data = await store.get((await service.result(requests["pan"].request_id)).images[0].key)
    assert read_png_parameters(pan_data)["pan"] == "left 0.5"

    # the same edit again is the same picture: served from the cache, stored under the same key
    again = requests["inpaint"].model_copy(update={"request_id": new_request_id()})
    submission = await service.submit(again)
    assert submission.cached
    repeat = edit(parent, source, Mode.INPAINT, mask_image=mask_key, strength=1.0, seed_explicit=False)
    first_key = (await service.result(requests["inpaint"].request_id)).images[0].key
    assert (await run(pipeline, repeat)).images[0].key == first_key


async def test_without_an_upscaler_the_upscale_says_it_is_a_plain_resize(pipeline: Pipeline) -> None:
    await pipeline.start_worker()
    service = pipeline.runtime.service
    parent = await wait_for_result(
        pipeline, (await service.imagine("a boat --seed 4 --n 1", ALICE)).request_id
    )
    source = parent.images[0]
    event = await run(
        pipeline, edit(parent, source, Mode.UPSCALE_SUBTLE, upscale_factor=4, width=256, height=256)
    )
    assert event.kind is EventKind.DONE and (event.images[0].width, event.images[0].height) == (256, 256)
    assert PLAIN_RESIZE_NOTE in (event.message or "")


async def test_refused_edits_are_not_charged(pipeline: Pipeline) -> None:
    """A bad mask fails with what to change; an edit that keeps an exposed figure is withheld by the image check."""
    await pipeline.start_worker()
    service, store = pipeline.runtime.service, pipeline.runtime.service.store
    quotas = service.admission.quotas
    parent = await wait_for_result(
        pipeline, (await service.imagine("a boat --seed 4 --n 1", ALICE)).request_id
    )
    used = (await quotas.status(ALICE)).used_today

    wrong_size = await store.put(
        png(ellipse_mask((32, 32), (0, 0, 10, 10))), "image/png", prefix=INPUT_PREFIX
    )
    event = await run(
        pipeline, edit(parent, parent.images[0], Mode.INPAINT, mask_image=wrong_size, strength=1.0)
    )
    assert event.kind is EventKind.FAILED and "The mask is 32×32 but the image is 64×64" in (
        event.message or ""
    )

    exposed_key = await store.put(png(figure(dressed=False)), "image/png", prefix=INPUT_PREFIX)
    exposed = StoredImage(key=exposed_key, url="", width=512, height=512)
    corner = await store.put(png(ellipse_mask((512, 512), (0, 0, 60, 60))), "image/png", prefix=INPUT_PREFIX)
    event = await run(pipeline, edit(parent, exposed, Mode.INPAINT, mask_image=corner, strength=1.0))
    assert event.kind is EventKind.REFUSED and "safety check" in (event.message or "")
    assert (await quotas.status(ALICE)).used_today == used
