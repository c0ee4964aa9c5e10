"""The chat page's event stream carries the worker's live preview with the progress, as the page draws it."""

from __future__ import annotations

import asyncio
import base64
import io
import json

from aiohttp import ClientSession, CookieJar
from PIL import Image

from tests.pipeline_fixture import Pipeline, pipeline  # noqa: F401
from tests.web.conftest import WebServer
from tests.web.test_security import CSRF


async def test_the_page_is_sent_the_live_preview_while_it_renders(
    web_server: WebServer,
    pipeline: Pipeline,  # noqa: F811
) -> None:
    async with ClientSession(cookie_jar=CookieJar(unsafe=True)) as session:
        page = await session.get(f"{web_server.url}/")
        token = CSRF.search(await page.text()).group(1)  # type: ignore[union-attr]
        stream = await session.get(f"{web_server.url}/api/events")
        submitted = await session.post(
            f"{web_server.url}/api/imagine",
            json={"text": "a lighthouse at dusk --seed 7 --steps 8"},
            headers={"X-CSRF-Token": token},
        )
        answer = await submitted.json()
        assert submitted.status == 200, answer
        request_id = answer["request_id"]
        views = []
        async with asyncio.timeout(120):
            async for line in stream.content:
                if line.startswith(b"data: "):
                    view = json.loads(line[6:])
                    views.append(view)
                    if view["request_id"] == request_id and view["kind"] == "done":
                        break
    shown = [view for view in views if view["kind"] == "progress" and "preview" in view]
    assert shown, [view["kind"] for view in views]
    prefix = "data:image/jpeg;base64,"
    assert shown[0]["preview"].startswith(prefix) and shown[0]["step"] < shown[0]["total"] == 8
    with Image.open(io.BytesIO(base64.b64decode(shown[0]["preview"].removeprefix(prefix)))) as image:
        assert image.format == "JPEG" and image.size == (64, 64)
    assert "preview" not in views[-1]  # the result shows its images instead (the page drops the preview)
