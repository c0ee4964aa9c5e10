"""Images users send: anything that isn't a reasonable picture is refused with a message saying what to send."""

from __future__ import annotations

import io
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from core.commands.uploads import fit_aspect, limit_decoding, read_upload, store_upload
from core.errors import InvalidRequest
from core.settings import LimitsSettings
from core.storage.local import LocalImageStore

MAX_PIXELS = LimitsSettings().max_upload_pixels


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def bomb_png(width: int, height: int) -> bytes:
    """A valid 1-bit PNG of `width`×`height` black pixels, written chunk by chunk: small on disk, huge decoded."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")

    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([1, 0, 0, 0, 0])  # 1 bit, grey
    compressor = zlib.compressobj(9)
    row = b"\0" + bytes((width + 7) // 8)  # filter byte + packed pixels
    data = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


@pytest.fixture
def pillow_limit() -> Iterator[None]:
    saved = Image.MAX_IMAGE_PIXELS
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = saved


async def test_a_picture_is_checked_then_stored_under_inputs(tmp_path: Path) -> None:
    store = LocalImageStore(tmp_path)
    upload = read_upload(png(Image.new("RGB", (96, 64), "red")), MAX_PIXELS)
    assert (upload.width, upload.height, upload.content_type) == (96, 64, "image/png")
    assert not (tmp_path / "inputs").exists()  # checking stores nothing
    key = await store_upload(store, upload)
    assert key == upload.key and key.startswith("inputs/")
    assert (tmp_path / key).read_bytes() == await store.get(key) == upload.data


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"GIF89a not really", "couldn't read that file as an image"),
        (png(Image.new("1", (20000, 10000))), "far too many pixels"),  # a tiny file that decodes to 200 Mpx
        (png(Image.new("L", (9000, 10))), "at most 8192 px a side"),
        (
            png(Image.new("1", (4097, 4096))),
            r"4097×4096 \(16,781,312 pixels\).*at most 16,777,216 pixels, for example 4096×4096",
        ),
    ],
)
def test_bad_uploads_are_refused_politely(data: bytes, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message) as refused:
        read_upload(data, MAX_PIXELS)
    assert refused.value.field == "image"


def test_an_upload_at_the_pixel_limit_is_accepted() -> None:
    upload = read_upload(png(Image.new("1", (4096, 4096))), MAX_PIXELS)
    assert (upload.width, upload.height) == (4096, 4096)


def test_a_decompression_bomb_is_refused_from_its_header_quickly() -> None:
    bomb = bomb_png(8192, 8192)  # the size from the report: 67 megapixels, ≈ 130 MiB once decoded to RGB
    assert len(bomb) < 16 * 1024
    started = time.process_time()
    with pytest.raises(InvalidRequest, match=r"8192×8192 \(67,108,864 pixels\)") as refused:
        read_upload(bomb, MAX_PIXELS)
    assert time.process_time() - started < 0.1  # decoding it took about 1.6 s: it was never decoded
    assert "at most 16,777,216 pixels, for example 4096×4096." in refused.value.message


def test_the_pixel_limit_is_a_setting() -> None:
    small = LimitsSettings(max_upload_pixels=64 * 64).max_upload_pixels
    with pytest.raises(InvalidRequest, match="at most 4,096 pixels, for example 64×64"):
        read_upload(png(Image.new("RGB", (65, 64))), small)
    assert read_upload(png(Image.new("RGB", (64, 64))), small).width == 64


@pytest.mark.usefixtures("pillow_limit")
def test_pillow_itself_refuses_to_decode_beyond_twice_the_limit() -> None:
    limit_decoding(MAX_PIXELS)
    with pytest.raises(Image.DecompressionBombError):
        Image.open(io.BytesIO(bomb_png(8192, 8192)))


def test_an_odd_source_size_becomes_the_models_own_size_at_its_aspect() -> None:
    assert fit_aspect("tiny", 1792, 1024) == (88, 48)
    assert fit_aspect("sdxl", 1000, 1000) == (1024, 1024)
