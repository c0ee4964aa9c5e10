"""Images users send to start from (img2img): checked before anything else, stored under the inputs prefix."""

from __future__ import annotations

import io
import math

from PIL import Image, UnidentifiedImageError

from core.commands.grammar import split_flags
from core.commands.sizes import size_for_aspect
from core.errors import InvalidRequest
from core.models.catalog import get_model
from core.storage.protocol import INPUT_PREFIX, ImageStore

UPLOAD_MAX_BYTES = 20 * 1024 * 1024
UPLOAD_MAX_SIDE = 8192
UPLOAD_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}


async def store_upload(store: ImageStore, data: bytes) -> tuple[str, tuple[int, int]]:
    if len(data) > UPLOAD_MAX_BYTES:
        raise InvalidRequest(
            "image",
            f"That image is {len(data) / 1e6:.1f} MB; please send one under "
            f"{UPLOAD_MAX_BYTES // 1_000_000} MB.",
        )
    try:
        with Image.open(io.BytesIO(data)) as image:
            kind, size = image.format or "", image.size
    except Image.DecompressionBombError:
        raise InvalidRequest(
            "image",
            f"That image has far too many pixels; please send one at most {UPLOAD_MAX_SIDE} px a side.",
        ) from None
    except (UnidentifiedImageError, OSError):
        raise InvalidRequest(
            "image", "I couldn't read that file as an image; please send a PNG, JPEG or WebP picture."
        ) from None
    if kind not in UPLOAD_TYPES:
        raise InvalidRequest(
            "image", f"{kind or 'That'} images aren't supported; please send a PNG, JPEG or WebP picture."
        )
    if max(size) > UPLOAD_MAX_SIDE:
        raise InvalidRequest(
            "image",
            f"That image is {size[0]}×{size[1]}; please send one at most {UPLOAD_MAX_SIDE} px a side.",
        )
    key = await store.put(data, UPLOAD_TYPES[kind], prefix=INPUT_PREFIX)
    return key, size


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
