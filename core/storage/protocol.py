"""Where images live: one Protocol, a local folder (the embedded default) and S3-compatible storage.

Keys are content-addressed ("images/ab/abcdef….png"), so the same bytes are stored once and the same
seed twice gives the same key. Implementations never block the event loop.
"""

from __future__ import annotations

import hashlib
from typing import Protocol

EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}

PUBLIC_PREFIX = "images"  # served to users (CDN)
INPUT_PREFIX = "inputs"  # images users uploaded for img2img
QUARANTINE_PREFIX = "quarantine"  # refused outputs kept for moderators; never public


def content_key(data: bytes, content_type: str, prefix: str = PUBLIC_PREFIX) -> str:
    """The storage key for these bytes: prefix/aa/<sha256>.<ext>."""
    try:
        extension = EXTENSIONS[content_type]
    except KeyError:
        raise ValueError(f"unsupported content type {content_type!r}") from None
    digest = hashlib.sha256(data).hexdigest()
    return f"{prefix}/{digest[:2]}/{digest}.{extension}"


class ImageStore(Protocol):
    async def put(
        self, data: bytes, content_type: str, prefix: str = PUBLIC_PREFIX, *, key_basis: bytes | None = None
    ) -> str:
        """Store the bytes under their content key and return the key. `key_basis`, when given, is what the key
        is computed from instead (the unsigned encoding of a signed image: same pixels and parameters, same key);
        an object already stored under that key is kept."""
        ...

    async def get(self, key: str) -> bytes:
        """The stored bytes; StorageError when missing or unreadable."""
        ...

    async def delete(self, key: str) -> None: ...

    async def url(self, key: str) -> str:
        """A URL users can open: CDN base + key, a presigned URL, or the local server's URL."""
        ...

    async def close(self) -> None: ...
