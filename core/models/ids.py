"""Request ids: short, URL- and button-safe, and deterministic when the platform gives a source id.

A request id is 16 characters of lowercase base32, so "v:{id}:3" fits Telegram's 64-byte callback_data and
Discord's 100-character custom_id with room to spare. A redelivered command (same platform message or
interaction id) maps to the same request id, which is the arq job id, so it is queued once.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets

REQUEST_ID_LENGTH = 16
REQUEST_ID_RE = re.compile(r"^[a-z2-7]{16}$")


def _encode(raw: bytes) -> str:
    return base64.b32encode(raw).decode("ascii").lower()[:REQUEST_ID_LENGTH]


def new_request_id(source: str | None = None) -> str:
    """A fresh random id, or a stable one derived from `source` (e.g. "telegram:chat:message")."""
    if source is None:
        return _encode(secrets.token_bytes(10))
    return _encode(hashlib.sha256(source.encode("utf-8")).digest()[:10])


def is_request_id(value: str) -> bool:
    return bool(REQUEST_ID_RE.match(value))
