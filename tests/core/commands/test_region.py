"""Vary (Region)'s mask: the image's size, something painted, stored as black and white; the request an INPAINT."""

from __future__ import annotations

import io

import pytest
from PIL import Image, ImageDraw

from core.commands.region import read_mask, region_request
from core.errors import InvalidRequest
from core.models.request import GenerationRequest, Mode, Platform, Requester
from core.models.result import StoredImage

IMAGE = StoredImage(key="images/ab/cd.png", url="http://x/images/ab/cd.png", width=64, height=48, index=1)
ALICE = Requester(platform=Platform.WEB, user_id="local", chat_id="local")


def png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def painted(size: tuple[int, int] = (64, 48), mode: str = "RGB") -> bytes:
    image = Image.new(mode, size, "black" if mode != "RGBA" else (0, 0, 0, 0))
    ImageDraw.Draw(image).rectangle((10, 10, 20, 20), fill="white")
    return png(image)


def test_a_painted_mask_is_kept_as_black_and_white() -> None:
    mask = read_mask(painted(), IMAGE, 4096 * 4096)
    with Image.open(io.BytesIO(mask.data)) as image:
        assert image.mode == "L" and image.size == (64, 48)
        assert image.getpixel((15, 15)) == 255 and image.getpixel((40, 40)) == 0
        assert sorted(color for _, color in image.getcolors()) == [0, 255]
    assert mask.key.startswith("inputs/")


def test_transparent_pixels_are_kept_whatever_their_colour() -> None:
    image = Image.new("RGBA", (64, 48), (255, 255, 255, 0))  # white but transparent: keep
    ImageDraw.Draw(image).rectangle((0, 0, 5, 5), fill=(255, 255, 255, 255))
    with Image.open(io.BytesIO(read_mask(png(image), IMAGE, 4096 * 4096).data)) as mask:
        assert mask.getpixel((2, 2)) == 255 and mask.getpixel((30, 30)) == 0


def test_a_mask_of_another_size_or_with_nothing_painted_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="The mask is 32×32 but the image is 64×48"):
        read_mask(painted((32, 32)), IMAGE, 4096 * 4096)
    with pytest.raises(InvalidRequest, match="Nothing is painted"):
        read_mask(png(Image.new("RGB", (64, 48))), IMAGE, 4096 * 4096)
    with pytest.raises(InvalidRequest, match="couldn't read that file"):
        read_mask(b"not a picture", IMAGE, 4096 * 4096)


def test_the_request_is_an_inpaint_of_that_image() -> None:
    parent = GenerationRequest(
        request_id="p" * 16, prompt="a harbour", width=64, height=48, steps=4, guidance=2.0,
        seeds=(1, 2), model="tiny", requester=ALICE,
    )  # fmt: skip
    mask = read_mask(painted(), IMAGE, 4096 * 4096)
    request = region_request(parent, IMAGE, 1, mask, "  a boat ", ALICE, "c" * 16, {}, None)
    assert request.mode is Mode.INPAINT and request.mask_image == mask.key
    assert request.source_image == IMAGE.key and request.parent_index == 1 and request.parent_id == "p" * 16
    assert request.prompt == "a boat" and (request.width, request.height) == (64, 48) and request.n == 2
    blank = region_request(parent, IMAGE, 1, mask, " ", ALICE, "d" * 16, {}, None)
    assert blank.prompt == "a harbour"
