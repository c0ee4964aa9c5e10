"""Images users send to start from (img2img): checked from their header before anything is decoded or stored.

`read_upload` refuses what isn't a reasonable picture, by its declared size and pixel count (a decompression
bomb is a few kilobytes that would decode to gigabytes), and names its content key without storing it.
`store_upload` stores it under the inputs prefix; the service does that only once the request is sure to be
queued, so refused, cached and repeated requests leave nothing behind.
"""

from __future__ import annotations

import io
import math
import warnings
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from core.commands.grammar import split_flags
from core.commands.sizes import size_for_aspect
from core.errors import InvalidRequest
from core.models.catalog import get_model
from core.storage.protocol import INPUT_PREFIX, ImageStore, content_key

UPLOAD_MAX_BYTES = 20 * 1024 * 1024
UPLOAD_MAX_SIDE = 8192
UPLOAD_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}


@dataclass(frozen=True)
class Upload:
    """A checked upload, not yet stored."""

    data: bytes
    content_type: str
    width: int
    height: int

    @property
    def key(self) -> str:
        """Where `store_upload` puts it (content-addressed, so known before storing)."""
        return content_key(self.data, self.content_type, INPUT_PREFIX)


def limit_decoding(max_pixels: int) -> None:
    """Make Pillow itself refuse (warn above, fail above twice) images beyond the limit, wherever decoded.

    Called once at start-up by the entry point; `read_upload` checks uploads against the limit anyway.
    """
    Image.MAX_IMAGE_PIXELS = max_pixels


def _too_many_pixels(width: int, height: int, max_pixels: int) -> InvalidRequest:
    side = math.isqrt(max_pixels)
    return InvalidRequest(
        "image",
        f"That image is {width}×{height} ({width * height:,} pixels); please send one of at most "
        f"{max_pixels:,} pixels, for example {side}×{side}.",
    )


def read_upload(data: bytes, max_pixels: int) -> Upload:
    """Check an upload from its header alone (nothing is decoded); InvalidRequest("image", …) says what to send."""
    if len(data) > UPLOAD_MAX_BYTES:
        raise InvalidRequest(
            "image",
            f"That image is {len(data) / 1e6:.1f} MB; please send one under "
            f"{UPLOAD_MAX_BYTES // 1_000_000} MB.",
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # refused below, by its size
            with Image.open(io.BytesIO(data)) as image:  # reads the header only
                kind, (width, height) = image.format or "", image.size
    except Image.DecompressionBombError:
        raise InvalidRequest(
            "image",
            f"That image has far too many pixels; please send one of at most {max_pixels:,} pixels.",
        ) from None
    except (UnidentifiedImageError, OSError):
        raise InvalidRequest(
            "image", "I couldn't read that file as an image; please send a PNG, JPEG or WebP picture."
        ) from None
    if kind not in UPLOAD_TYPES:
        raise InvalidRequest(
            "image", f"{kind or 'That'} images aren't supported; please send a PNG, JPEG or WebP picture."
        )
    if max(width, height) > UPLOAD_MAX_SIDE:
        raise InvalidRequest(
            "image",
            f"That image is {width}×{height}; please send one at most {UPLOAD_MAX_SIDE} px a side.",
        )
    if width * height > max_pixels:
        raise _too_many_pixels(width, height, max_pixels)
    return Upload(data, UPLOAD_TYPES[kind], width, height)


async def store_upload(store: ImageStore, upload: Upload) -> str:
    """Store a checked upload under the inputs prefix; returns its key (`upload.key`)."""
    return await store.put(upload.data, upload.content_type, prefix=INPUT_PREFIX)


def has_size_flag(text: str) -> bool:
    _, flags = split_flags(text)
    return any(flag.lower().lstrip("-—–") in ("ar", "aspect", "size") for flag, _ in flags)


def fit_aspect(model: str, width: int, height: int) -> tuple[int, int]:
    """The model's native area at the source image's aspect ratio (limited to 1:4..4:1), on its size grid."""
    spec = get_model(model)
    divisor = math.gcd(width, height)
    ratio_w, ratio_h = width // divisor, height // divisor
    if ratio_w > 4 * ratio_h:
        ratio_w, ratio_h = 4, 1
    elif ratio_h > 4 * ratio_w:
        ratio_w, ratio_h = 1, 4
    new_w, new_h, _ = size_for_aspect(spec, f"{ratio_w}:{ratio_h}")
    return new_w, new_h
