"""Every stored image says what it is: signed Content Credentials (C2PA) and an invisible watermark."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter
from pydantic import SecretStr

from core import constants as c
from core.models.result import EventKind
from core.settings import ProvenanceSettings
from core.storage.local import LocalImageStore
from moderation.provenance import DIGITAL_SOURCE_TYPE, has_watermark, read_manifest, read_provenance
from tests.emulators.openai_fixture import openai_emulator_fixture  # noqa: F401
from tests.pipeline_fixture import Pipeline
from tests.pipeline_fixture import pipeline as pipeline  # noqa: PLC0414
from tests.settings import with_settings
from tests.worker.test_pipeline import ALICE, wait_for_result
from worker.dev_certificate import SIGNER_NAME, make_development_identity
from worker.postprocess import encode_png, read_png_parameters
from worker.provenance import Claim, Provenance, ProvenanceError


def natural_image(seed: int, size: int = 512) -> Image.Image:
    """A picture with smooth gradients, shapes and a little grain, like a photo or a render."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    planes = [
        128 + 60 * np.sin(x * rng.uniform(1, 8) + rng.uniform(0, 6)) * np.cos(y * rng.uniform(1, 8))
        for _ in range(3)
    ]
    image = Image.fromarray(np.clip(np.stack(planes, axis=-1), 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(6):
        cx, cy = (int(v) for v in rng.integers(0, size, 2))
        r = int(rng.integers(10, size // 4))
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=tuple(int(v) for v in rng.integers(0, 255, 3)))
    grain = rng.normal(0, 6, (size, size, 3))
    return Image.fromarray(np.clip(np.asarray(image) + grain, 0, 255).astype(np.uint8)).filter(
        ImageFilter.SMOOTH
    )


def jpeg(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def mime(data: bytes) -> str:
    with Image.open(io.BytesIO(data)) as image:
        return {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}[image.format or ""]


@pytest.fixture
def provenance(tmp_path: Path) -> Provenance:
    return Provenance(ProvenanceSettings(), tmp_path)


async def test_every_stored_image_is_signed_and_an_edit_names_its_parent(pipeline: Pipeline) -> None:
    await pipeline.start_worker()
    service, store = pipeline.runtime.service, pipeline.runtime.service.store
    trust = Provenance(pipeline.settings.provenance, pipeline.settings.data_dir).trust_anchors_pem
    submission = await service.imagine("a red fox --seed 3 --n 2 --size 256x256", ALICE)
    event = await wait_for_result(pipeline, submission.request_id, timeout_s=300)
    assert event.kind is EventKind.DONE, event.message
    assert event.grid is not None and event.preview is not None
    for stored in [*event.images, event.grid, event.preview]:
        data = await store.get(stored.key)
        manifest = read_manifest(data, mime(data), trust)
        assert manifest is not None, stored.key
        assert manifest.validation_state == "Trusted" and manifest.failures == ()
        assert manifest.actions == ("c2pa.created",)
        assert manifest.software_agent.startswith("imagebot ")
        assert manifest.digital_source_type == DIGITAL_SOURCE_TYPE
        assert manifest.model == "tiny" and manifest.signer == SIGNER_NAME
    first = await store.get(event.images[0].key)
    assert read_png_parameters(first)["seed"] == "3"  # the generation parameters are still there
    with Image.open(io.BytesIO(first)) as image:
        assert has_watermark(image.convert("RGB"))

    variation = await service.vary(submission.request_id, 0, ALICE)
    child = await wait_for_result(pipeline, variation.request_id, timeout_s=300)
    assert child.kind is EventKind.DONE, child.message
    data = await store.get(child.images[0].key)
    manifest = read_manifest(data, "image/png", trust)
    assert manifest is not None and manifest.signed_ok
    assert manifest.actions == ("c2pa.opened", "c2pa.edited")
    [ingredient] = manifest.ingredients
    assert ingredient["relationship"] == "parentOf"
    parent_actions = ingredient["manifest"]["assertions"][0]["data"]["actions"]
    assert [action["action"] for action in parent_actions] == ["c2pa.created"]


def test_a_tampered_image_fails_validation(provenance: Provenance) -> None:
    png = encode_png(natural_image(1, 256), {"prompt": "x"})
    signed = provenance.sign(png, "image/png", Claim("tiny"))
    assert read_provenance(signed, provenance.trust_anchors_pem).manifest.signed_ok  # type: ignore[union-attr]
    tampered = bytearray(signed)
    at = bytes(tampered).find(b"IDAT") + 40
    tampered[at] ^= 0xFF
    manifest = read_manifest(bytes(tampered), "image/png", provenance.trust_anchors_pem)
    assert manifest is not None and not manifest.signed_ok
    assert "assertion.dataHash.mismatch" in manifest.failures


async def test_the_storage_key_covers_pixels_and_parameters_not_the_signature(
    provenance: Provenance, tmp_path: Path
) -> None:
    png = encode_png(natural_image(2, 256), {"prompt": "x", "seed": "1"})
    first = provenance.sign(png, "image/png", Claim("tiny"))
    second = provenance.sign(png, "image/png", Claim("tiny"))
    assert first != second  # each signature has its own instance id
    store = LocalImageStore(tmp_path / "images")
    key = await store.put(first, "image/png", key_basis=png)
    assert await store.put(second, "image/png", key_basis=png) == key
    assert await store.get(key) == first  # the first signed file stays


def test_signing_failure_refuses_or_publishes_unsigned_as_configured(tmp_path: Path) -> None:
    chain = make_development_identity().chain_pem.decode()
    broken = {
        "certificate_pem": SecretStr(chain),
        "key_pem": SecretStr("-----BEGIN PRIVATE KEY-----\nnope\n"),
    }
    png = encode_png(natural_image(3, 256), {"prompt": "x"})
    refusing = Provenance(ProvenanceSettings(**broken), tmp_path)  # type: ignore[arg-type]
    with pytest.raises(ProvenanceError, match="haven't published"):
        refusing.sign(png, "image/png", Claim("tiny"))
    lenient = Provenance(ProvenanceSettings(**broken, on_failure="unsigned"), tmp_path)  # type: ignore[arg-type]
    assert lenient.sign(png, "image/png", Claim("tiny")) == png


def test_the_watermark_survives_jpeg_and_a_half_size_resize(provenance: Provenance) -> None:
    """Detection over 12 images: untouched, after JPEG at quality 85, after a 50 % resize; none on unmarked ones."""
    images = [natural_image(seed) for seed in range(12)]
    marked = [provenance.watermark(image) for image in images]
    untouched = sum(has_watermark(image) for image in marked)
    after_jpeg = sum(has_watermark(jpeg(image, 85)) for image in marked)
    after_resize = sum(has_watermark(image.resize((256, 256), Image.Resampling.LANCZOS)) for image in marked)
    false_positives = sum(has_watermark(image) for image in images)
    psnr = min(
        10 * np.log10(255**2 / np.mean((np.asarray(a, float) - np.asarray(b, float)) ** 2))
        for a, b in zip(images, marked, strict=True)
    )
    print(
        f"watermark detected: {untouched}/12 untouched, {after_jpeg}/12 after JPEG q85, "
        f"{after_resize}/12 after a 50% resize; {false_positives}/12 false positives; min PSNR {psnr:.1f} dB"
    )
    assert untouched == 12
    assert after_jpeg >= 11 and after_resize >= 11
    assert false_positives == 0
    assert psnr > 30  # invisible


async def test_openai_images_keep_their_own_credentials_as_an_ingredient(
    pipeline: Pipeline,
    openai_emulator,  # type: ignore[no-untyped-def]
) -> None:
    upstream = make_development_identity()
    openai_emulator.sign_with = (upstream.chain_pem, upstream.key_pem)
    openai = {"api_key": SecretStr(openai_emulator.api_key), "base_url": openai_emulator.base_url}
    settings = with_settings(pipeline.settings, openai=openai)
    from cli.runtime import open_runtime

    async with open_runtime(settings) as runtime:
        cloud = Pipeline(runtime)
        await cloud.start_worker(c.QUEUE_CLOUD)
        try:
            submission = await runtime.service.imagine("a lighthouse --n 1 --model dall-e-3", ALICE)
            event = await wait_for_result(cloud, submission.request_id)
        finally:
            await cloud.stop_workers()
        data = await runtime.service.store.get(event.images[0].key)
    assert event.kind is EventKind.DONE, event.message
    manifest = read_manifest(data, "image/png")
    assert manifest is not None and manifest.signed_ok
    [ingredient] = manifest.ingredients
    agent = ingredient["manifest"]["claim_generator_info"][0]["name"]
    assert agent == "OpenAI API emulator"
