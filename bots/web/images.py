"""/images/…: the stored result images, served by this process from whatever store is configured.

Only keys under the public prefix are served (uploads, masks and quarantined outputs never are), exactly as a
CDN in front of the bucket would; keys are content-addressed, so responses are cached for good.
"""

from __future__ import annotations

from aiohttp import web

from bots.web.context import CONTEXT
from core.errors import NotFound, StorageError
from core.storage.local import CACHE_CONTROL_PUBLIC, CONTENT_TYPES
from core.storage.protocol import PUBLIC_PREFIX


async def image(request: web.Request) -> web.Response:
    key = f"{PUBLIC_PREFIX}/{request.match_info['tail']}"
    extension = key.rpartition(".")[2].lower()
    content_type = CONTENT_TYPES.get(extension)
    if content_type is None:
        raise NotFound("No such image.")
    try:
        data = await request.app[CONTEXT].service.store.get(key)
    except (StorageError, FileNotFoundError):
        raise NotFound("No such image (it may have been deleted).") from None
    return web.Response(body=data, content_type=content_type, headers={"Cache-Control": CACHE_CONTROL_PUBLIC})
