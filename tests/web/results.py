"""Finished results planted straight into core's stores, for tests that need one without rendering it."""

from __future__ import annotations

import io

from PIL import Image

from core.governance.quotas import owner_id
from core.models.ids import new_request_id
from core.models.request import GenerationRequest, Platform, Requester
from core.models.result import EventKind, ResultEvent, StoredImage
from core.service import ImagineService

ALICE = Requester(platform=Platform.TELEGRAM, user_id="1001", chat_id="-100500", community_id="-100500")
BOB = Requester(platform=Platform.TELEGRAM, user_id="1002", chat_id="-100500", community_id="-100500")


def png(color: tuple[int, int, int], size: tuple[int, int] = (64, 64)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, format="PNG")
    return out.getvalue()


async def planted(service: ImagineService, requester: Requester, color: tuple[int, int, int]) -> str:
    """A DONE result of one 64×64 image for `requester`, stored like a worker stores it; its request id."""
    request_id = new_request_id()
    request = GenerationRequest(
        request_id=request_id,
        prompt=f"a {color} square",
        width=64,
        height=64,
        steps=2,
        guidance=1.0,
        seeds=(7,),
        model="tiny",
        requester=requester,
        reply_to={"chat_id": requester.chat_id},
    )
    key = await service.store.put(png(color), "image/png")
    image = StoredImage(key=key, url=await service.store.url(key), width=64, height=64, seed=7, index=0)
    result = ResultEvent(
        kind=EventKind.DONE, request_id=request_id, requester=requester, model="tiny", images=(image,)
    )
    await service.queue.store(request)
    await service.queue.remember(owner_id(requester), request_id)
    await service.results.save(result)
    return request_id
