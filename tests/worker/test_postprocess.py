"""PNG metadata, grids, chat previews and Lanczos upscaling: pure PIL, deterministic bytes."""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
import pytest
from PIL import Image

from core.models.request import GenerationRequest, Mode
from worker.postprocess import (
    encode_png,
    generation_parameters,
    grid_shape,
    make_grid,
    make_preview,
    preview_size,
    read_png_parameters,
    upscale_lanczos,
)

RequestFactory = Callable[..., GenerationRequest]


def noise(width: int, height: int, seed: int = 0) -> Image.Image:
    """Random pixels: the worst case for compression, so size limits are really exercised."""
    pixels = np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    return Image.fromarray(pixels, "RGB")


def solid(color: tuple[int, int, int], size: tuple[int, int] = (64, 64)) -> Image.Image:
    return Image.new("RGB", size, color)


PARAMETERS = {
    "prompt": "a lighthouse at dusk",
    "negative_prompt": "blurry",
    "steps": "2",
    "guidance": "5",
    "seed": "42",
    "model": "tiny",
}


def test_png_carries_every_parameter_and_an_a1111_parameters_chunk() -> None:
    image = noise(64, 48)

    data = encode_png(image, PARAMETERS)
    read = read_png_parameters(data)

    assert read == {
        **PARAMETERS,
        "parameters": "a lighthouse at dusk\nNegative prompt: blurry\n"
        "Steps: 2, CFG scale: 5, Seed: 42, Size: 64x48, Model: tiny",
    }
    with Image.open(io.BytesIO(data)) as decoded:
        assert decoded.format == "PNG"
        assert np.array_equal(np.asarray(decoded.convert("RGB")), np.asarray(image))


def test_png_metadata_keeps_text_outside_latin1() -> None:
    parameters = {**PARAMETERS, "prompt": "灯台 at dusk 🌅", "negative_prompt": ""}

    read = read_png_parameters(encode_png(solid((10, 20, 30)), parameters))

    assert read["prompt"] == "灯台 at dusk 🌅"
    assert read["parameters"].startswith("灯台 at dusk 🌅\nSteps: 2,")  # no empty negative prompt line


def test_png_bytes_are_deterministic() -> None:
    assert encode_png(noise(64, 64), PARAMETERS) == encode_png(noise(64, 64), PARAMETERS)
    assert encode_png(noise(64, 64), PARAMETERS) != encode_png(noise(64, 64), {**PARAMETERS, "seed": "43"})


def test_generation_parameters_describe_the_request(make_request: RequestFactory) -> None:
    request = make_request(mode=Mode.IMG2IMG, source_image="abc.png", strength=0.35, negative_prompt="fog")

    parameters = generation_parameters(request, seed=7, model="tiny", backend="diffusers")
    text = read_png_parameters(encode_png(solid((0, 0, 0)), parameters))["parameters"]

    assert parameters["seed"] == "7"
    assert parameters["mode"] == "img2img"
    assert text == (
        "a lighthouse at dusk\nNegative prompt: fog\n"
        "Steps: 2, CFG scale: 5, Seed: 7, Size: 64x64, Model: tiny, Denoising strength: 0.35"
    )


def test_reading_parameters_of_a_jpeg_is_refused() -> None:
    with pytest.raises(ValueError, match="PNG"):
        read_png_parameters(make_preview(solid((1, 2, 3)), 64))


@pytest.mark.parametrize(
    ("count", "size", "shape"),
    [(1, (64, 64), (1, 1)), (2, (128, 64), (2, 1)), (3, (128, 128), (2, 2)), (4, (128, 128), (2, 2))],
)
def test_grid_size_follows_the_image_count(count: int, size: tuple[int, int], shape: tuple[int, int]) -> None:
    colors = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)][:count]

    grid = make_grid([solid(color) for color in colors])

    assert grid.size == size
    assert grid_shape(count) == shape
    columns = shape[0]
    for index, color in enumerate(colors):  # cells in reading order
        x, y = (index % columns) * 64 + 32, (index // columns) * 64 + 32
        assert grid.getpixel((x, y)) == color
    if count == 3:
        assert grid.getpixel((96, 96)) == (0, 0, 0)  # the empty fourth cell


@pytest.mark.parametrize("count", [0, 5])
def test_grid_of_no_or_too_many_images_is_refused(count: int) -> None:
    with pytest.raises(ValueError, match="1 to 4"):
        make_grid([solid((0, 0, 0))] * count)


@pytest.mark.parametrize("fmt", ["jpeg", "webp"])
def test_preview_is_downscaled_to_max_side(fmt: str) -> None:
    data = make_preview(noise(1500, 1000), 1024, fmt)  # type: ignore[arg-type]

    with Image.open(io.BytesIO(data)) as preview:
        assert preview.format == fmt.upper()
        assert preview.size == (1024, 682)
    assert make_preview(noise(1500, 1000), 1024, fmt) == data  # type: ignore[arg-type]


def test_preview_never_exceeds_the_byte_limit() -> None:
    data = make_preview(noise(512, 512), 512, "jpeg", max_bytes=40_000)

    assert len(data) <= 40_000
    with Image.open(io.BytesIO(data)) as preview:
        assert preview.format == "JPEG"
        assert max(preview.size) <= 512


def test_preview_respects_telegrams_width_plus_height_limit() -> None:
    assert preview_size((9000, 3000), 20_000) == (7500, 2500)
    assert preview_size((64, 32), 1024) == (64, 32)  # never enlarged


def test_small_images_pass_through_at_their_size() -> None:
    with Image.open(io.BytesIO(make_preview(solid((9, 9, 9), (96, 64)), 1024))) as preview:
        assert preview.size == (96, 64)


def test_upscale_lanczos_doubles_the_size() -> None:
    image = noise(64, 48)

    bigger = upscale_lanczos(image, 2)

    assert bigger.size == (128, 96)
    assert upscale_lanczos(image, 2).tobytes() == bigger.tobytes()
    with pytest.raises(ValueError, match="positive"):
        upscale_lanczos(image, 0)
