"""Edits on the tiny random-weight model, through DiffusersBackend as a job calls it: what the user kept stays exact.

Random weights draw noise, so the repainted parts change; the kept parts must equal the source's pixels exactly
(a paste-back, not a re-encode), which is what these tests check.
"""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from core.errors import InvalidRequest
from core.models.request import Canvas, ControlRef, LoraRef, Mode
from core.settings import AdapterSettings, UpscalerSettings
from tests.adapter_fixture import adapter_settings, tiny_controlnet_dir, tiny_lora_files  # noqa: F401
from tests.worker.conftest import RequestFactory
from tests.worker.test_upscaler import picture, save_esrgan
from worker.diffusers_backend import DiffusersBackend
from worker.edits import PLAIN_RESIZE_NOTE
from worker.inpaint import InpaintPipelines, attach_mask, finish, inpaint_arguments, read_mask
from worker.registry import ModelRegistry


def ellipse_mask(size: tuple[int, int], box: tuple[int, int, int, int]) -> Image.Image:
    mask = Image.new("L", size, 0)
    ImageDraw.Draw(mask).ellipse(box, fill=255)
    return mask


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def pixels(image: Image.Image) -> np.ndarray:  # type: ignore[type-arg]
    return np.asarray(image.convert("RGB"), dtype=np.int16)


async def test_inpaint_keeps_every_pixel_outside_the_region(
    tiny_backend: DiffusersBackend, make_request: RequestFactory
) -> None:
    source = picture(64, 64)
    mask = ellipse_mask((64, 64), (10, 20, 50, 60))
    request = make_request(mode=Mode.INPAINT, source_image="k", mask_image="m", strength=1.0, seeds=(1, 2))
    generation = await tiny_backend.generate(request, attach_mask(source, mask))

    keep = np.asarray(mask) == 0
    for generated in generation.images:
        out = pixels(generated.image)
        assert generated.image.size == (64, 64)
        assert (out[keep] == pixels(source)[keep]).all()
        assert (out[~keep] != pixels(source)[~keep]).any(axis=-1).mean() > 0.5  # the region was repainted
    assert generation.images[0].image.tobytes() != generation.images[1].image.tobytes()  # one seed each


async def test_an_inpaint_larger_than_the_model_renders_smaller_and_still_keeps_the_rest(
    tiny_backend: DiffusersBackend, make_request: RequestFactory
) -> None:
    source = picture(300, 140)  # beyond tiny's area: rendered at its native area, resized back
    mask = ellipse_mask(source.size, (200, 10, 290, 130))
    request = make_request(
        mode=Mode.INPAINT, width=300, height=140, source_image="k", mask_image="m", strength=0.9
    )
    out = (await tiny_backend.generate(request, attach_mask(source, mask))).images[0].image
    keep = np.asarray(mask) == 0
    assert out.size == (300, 140)
    assert (pixels(out)[keep] == pixels(source)[keep]).all()


async def test_the_same_edit_gives_the_same_bytes(
    tiny_backend: DiffusersBackend, make_request: RequestFactory
) -> None:
    source = picture(64, 64, seed=5)
    request = make_request(mode=Mode.OUTPAINT, source_image="k", canvas=Canvas(zoom=1.5), strength=1.0)
    first = await tiny_backend.generate(request, source)
    second = await tiny_backend.generate(request, source)
    assert first.images[0].image.tobytes() == second.images[0].image.tobytes()


async def test_a_zoom_out_keeps_the_source_scaled_in_the_middle(
    tiny_backend: DiffusersBackend, make_request: RequestFactory
) -> None:
    source = picture(64, 64, seed=1)
    request = make_request(mode=Mode.OUTPAINT, source_image="k", canvas=Canvas(zoom=2.0), strength=1.0)
    out = (await tiny_backend.generate(request, source)).images[0].image
    assert out.size == (64, 64)  # the model's native area
    middle = out.crop((16, 16, 48, 48))
    assert middle.tobytes() == source.resize((32, 32), Image.Resampling.LANCZOS).tobytes()
    border = pixels(out).copy()
    border[16:48, 16:48] = -1
    assert (border[border >= 0] != 0).any()  # a border was drawn around it


@pytest.mark.parametrize(
    ("way", "size", "box"),
    [
        ("left", (96, 64), (32, 0, 96, 64)),
        ("right", (96, 64), (0, 0, 64, 64)),
        ("up", (64, 96), (0, 32, 64, 96)),
        ("down", (64, 96), (0, 0, 64, 64)),
    ],
)
async def test_a_pan_keeps_the_source_strip(
    tiny_backend: DiffusersBackend,
    make_request: RequestFactory,
    way: str,
    size: tuple[int, int],
    box: tuple[int, int, int, int],
) -> None:
    source = picture(64, 64, seed=2)
    canvas = Canvas(pan=way, pan_fraction=0.5)  # type: ignore[arg-type]
    request = make_request(
        mode=Mode.OUTPAINT, width=size[0], height=size[1], source_image="k", canvas=canvas, strength=1.0
    )
    out = (await tiny_backend.generate(request, source)).images[0].image
    assert out.size == size
    assert out.crop(box).tobytes() == source.tobytes()


async def test_a_pan_past_the_models_maximum_side_is_refused_before_any_compute(
    tiny_backend: DiffusersBackend, make_request: RequestFactory
) -> None:
    source = picture(400, 64)
    request = make_request(
        mode=Mode.OUTPAINT,
        width=600,
        source_image="k",
        canvas=Canvas(pan="right", pan_fraction=0.5),
        strength=1.0,
    )
    with pytest.raises(InvalidRequest, match=r"maximum of 512 px\. Pan by at most 28%"):
        await tiny_backend.generate(request, source)


async def test_an_edit_whose_size_disagrees_with_its_source_is_refused(
    tiny_backend: DiffusersBackend, make_request: RequestFactory
) -> None:
    request = make_request(mode=Mode.UPSCALE_SUBTLE, width=64, height=64, source_image="k", upscale_factor=2)
    with pytest.raises(InvalidRequest, match="makes 128×128, not the 64×64"):
        await tiny_backend.generate(request, picture(64, 64))
    inpaint = make_request(mode=Mode.INPAINT, source_image="k", mask_image="m", strength=1.0)
    with pytest.raises(InvalidRequest, match="needs a mask"):
        await tiny_backend.generate(inpaint, picture(64, 64))  # the mask never arrived


def test_a_mask_is_checked_for_its_size_and_for_covering_something_but_not_everything() -> None:
    mask = read_mask(png(ellipse_mask((64, 48), (0, 0, 20, 20)).convert("RGB")), (64, 48))
    assert mask.mode == "L" and set(np.unique(np.asarray(mask))) == {0, 255}
    with pytest.raises(InvalidRequest, match="The mask is 64×48 but the image is 64×64"):
        read_mask(png(ellipse_mask((64, 48), (0, 0, 20, 20))), (64, 64))
    with pytest.raises(InvalidRequest, match="covers nothing"):
        read_mask(png(Image.new("L", (64, 64), 40)), (64, 64))
    with pytest.raises(InvalidRequest, match="covers the whole image"):
        read_mask(png(Image.new("L", (64, 64), 255)), (64, 64))


async def test_without_an_upscaler_upscales_are_a_plain_resize_and_say_so(
    tiny_backend: DiffusersBackend, make_request: RequestFactory
) -> None:
    source = picture(48, 40)
    subtle = make_request(mode=Mode.UPSCALE_SUBTLE, width=96, height=80, source_image="k", upscale_factor=2)
    generation = await tiny_backend.generate(subtle, source)
    assert generation.images[0].image.size == (96, 80)
    assert PLAIN_RESIZE_NOTE in (generation.note or "")


async def test_with_an_upscaler_subtle_is_super_resolution_alone_and_creative_adds_detail(
    tiny_registry: ModelRegistry, make_request: RequestFactory, tmp_path: Path
) -> None:
    weights = save_esrgan(tmp_path / "x2.pth", 2)
    settings = UpscalerSettings(model=str(weights), tile=32, tile_overlap=8, detail_overlap=16)
    backend = DiffusersBackend(tiny_registry, upscaler=settings)
    assert backend.editor.upscaler is not None
    source = picture(40, 32)
    subtle = make_request(mode=Mode.UPSCALE_SUBTLE, width=160, height=128, source_image="k", upscale_factor=4)
    made = await backend.generate(subtle, source)
    assert made.images[0].image.size == (160, 128) and made.note is None
    assert made.images[0].image.tobytes() == backend.editor.upscaler.upscale(source, 4).tobytes()

    creative = make_request(
        mode=Mode.UPSCALE_CREATIVE,
        width=80,
        height=64,
        source_image="k",
        upscale_factor=2,
        strength=0.5,
        seeds=(3,),
    )
    steps: list[tuple[int, int]] = []
    detailed = await backend.generate(creative, source, lambda step, total: steps.append((step, total)))
    image = detailed.images[0].image
    assert image.size == (80, 64) and PLAIN_RESIZE_NOTE not in (detailed.note or "")
    assert image.tobytes() != backend.editor.upscaler.upscale(source, 2).tobytes()
    assert steps and steps[-1][0] == steps[-1][1]  # progress across every tile, ending at the total


def test_a_dedicated_inpainting_checkpoint_named_in_the_catalog_is_used(
    tiny_registry: ModelRegistry, make_request: RequestFactory, tmp_path: Path
) -> None:
    """An inpainting UNet (9 input channels: latents, mask, masked image) saved as a checkpoint folder and loaded
    through the same from_pretrained path as stable-diffusion-inpainting's."""
    import torch
    from diffusers import UNet2DConditionModel

    loaded = tiny_registry.get("tiny")
    assert loaded is not None
    config = dict(loaded.text2img.unet.config)
    config["in_channels"] = 9
    torch.manual_seed(0)
    UNet2DConditionModel.from_config(config).save_pretrained(tmp_path / "tiny-inpainting" / "unet")
    spec = dataclasses.replace(loaded.spec, inpaint_repo_id=str(tmp_path / "tiny-inpainting"))
    dedicated = dataclasses.replace(loaded, spec=spec)

    pipeline = InpaintPipelines().get(dedicated)
    assert pipeline.unet.config.in_channels == 9
    assert pipeline.vae is loaded.text2img.vae  # only the UNet was loaded

    source, mask = picture(64, 64), ellipse_mask((64, 64), (0, 0, 40, 40))
    request = make_request(mode=Mode.INPAINT, source_image="k", mask_image="m", strength=1.0)
    arguments = inpaint_arguments(dedicated, request, source, mask)
    arguments["generator"] = [torch.Generator().manual_seed(1)]
    with torch.inference_mode():
        out = finish(list(pipeline(**arguments).images), source, mask)[0]
    keep = np.asarray(mask) == 0
    assert (pixels(out)[keep] == pixels(source)[keep]).all()

    missing = dataclasses.replace(
        loaded, spec=dataclasses.replace(spec, inpaint_repo_id=str(tmp_path / "nope"))
    )
    assert (
        InpaintPipelines().get(missing).unet is loaded.text2img.unet
    )  # logged, and the shared weights inpaint


async def test_an_edit_follows_the_requests_lora_and_sampler_and_still_keeps_the_rest(
    tiny_registry: ModelRegistry,
    adapter_settings: AdapterSettings,  # noqa: F811
    make_request: RequestFactory,
) -> None:
    backend = DiffusersBackend(tiny_registry, adapters=adapter_settings)
    source, mask = picture(64, 64, seed=4), ellipse_mask((64, 64), (0, 0, 40, 40))
    fields = {"mode": Mode.INPAINT, "source_image": "k", "mask_image": "m", "strength": 1.0, "seeds": (3,)}
    plain = (await backend.generate(make_request(**fields), attach_mask(source, mask))).images[0].image
    styled_request = make_request(**fields, loras=(LoraRef(name="glow"),), sampler="euler a")
    styled = (await backend.generate(styled_request, attach_mask(source, mask))).images[0].image
    assert styled.tobytes() != plain.tobytes()
    keep = np.asarray(mask) == 0
    assert (pixels(styled)[keep] == pixels(source)[keep]).all()
    again = (await backend.generate(make_request(**fields), attach_mask(source, mask))).images[0].image
    assert again.tobytes() == plain.tobytes()  # the LoRA and sampler were for that call only

    control = make_request(**fields, control=ControlRef(kind="canny", image="c"))
    with pytest.raises(InvalidRequest, match=r"--control can't guide an edit \(inpaint\)"):
        await backend.generate(control, attach_mask(source, mask), control=source)
