"""Where images live: the ImageStore protocol, a local folder and S3-compatible storage, chosen by settings."""

from core.storage.factory import build_store
from core.storage.protocol import ImageStore, content_key

__all__ = ["ImageStore", "build_store", "content_key"]
