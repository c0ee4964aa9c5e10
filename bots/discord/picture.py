"""The picture of a reply: an attachment when it fits the upload limit, else an embed of its CDN URL."""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass

import discord

from core.errors import StorageError
from core.models.result import StoredImage
from core.storage.protocol import EXTENSIONS, ImageStore

log = logging.getLogger(__name__)

SPOILER_PREFIX = "SPOILER_"


@dataclass(frozen=True)
class Picture:
    file: discord.File | None = None
    embed: discord.Embed | None = None
    note: str = ""  # said in the text when neither an attachment nor an embed could show it


def file_name(stem: str, image: StoredImage, spoiler: bool) -> str:
    name = f"{stem}.{EXTENSIONS.get(image.content_type, 'png')}"
    return SPOILER_PREFIX + name if spoiler else name


async def picture(
    store: ImageStore, candidates: list[StoredImage | None], limit: int, *, stem: str, spoiler: bool
) -> Picture:
    """The first candidate that fits `limit` bytes as a file; else an embed of the first public URL."""
    images = [image for image in candidates if image is not None]
    for image in images:
        if image.size_bytes and image.size_bytes > limit:
            continue
        try:
            data = await store.get(image.key)
        except StorageError:
            log.warning("image %s could not be read for upload", image.key, exc_info=True)
            continue
        if len(data) <= limit:
            return Picture(
                file=discord.File(io.BytesIO(data), filename=file_name(stem, image, spoiler), spoiler=spoiler)
            )
    for image in images:
        if image.url.startswith(("https://", "http://")):
            embed = discord.Embed()
            embed.set_image(url=image.url)
            return Picture(embed=embed)
    return Picture(note="(The image is too large to attach here.)")
