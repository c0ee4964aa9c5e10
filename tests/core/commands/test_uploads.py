"""Images users send: anything that isn't a reasonable picture is refused with a message saying what to send."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from core.commands.uploads import fit_aspect, store_upload
from core.errors import InvalidRequest
from core.storage.local import LocalImageStore


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


async def test_a_picture_is_stored_under_inputs(tmp_path: Path) -> None:
    store = LocalImageStore(tmp_path)
    key, size = await store_upload(store, png(Image.new("RGB", (96, 64), "red")))
    assert key.startswith("inputs/") and size == (96, 64)
    assert (tmp_path / key).read_bytes() == await store.get(key)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"GIF89a not really", "couldn't read that file as an image"),
        (png(Image.new("1", (20000, 10000))), "far too many pixels"),  # a tiny file that decodes to 200 Mpx
        (png(Image.new("L", (9000, 10))), "at most 8192 px a side"),
    ],
)
async def test_bad_uploads_are_refused_politely(tmp_path: Path, data: bytes, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message) as refused:
        await store_upload(LocalImageStore(tmp_path), data)
    assert refused.value.field == "image"
    assert not (tmp_path / "inputs").exists()


def test_an_odd_source_size_becomes_the_models_own_size_at_its_aspect() -> None:
    assert fit_aspect("tiny", 1792, 1024) == (88, 48)
    assert fit_aspect("sdxl", 1000, 1000) == (1024, 1024)
