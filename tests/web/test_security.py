"""Who may do what on the web pages: signed links that expire and name one user, CSRF on every change, limits.

Plain aiohttp client tests against the real app over a real Redis; results are planted in core's stores.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator

import pytest
from aiohttp import CookieJar
from aiohttp.test_utils import TestClient, TestServer

from bots.web import build_app
from core.commands.links import LinkClaims, page_link, region_link, sign
from core.delivery.events import EventPublisher
from core.errors import StorageError
from core.models.result import EventKind, ResultEvent
from core.settings import Settings
from tests.pipeline_fixture import Pipeline, pipeline  # noqa: F401
from tests.web.conftest import FAST, SECRET, community
from tests.web.results import ALICE, BOB, planted

PUBLIC = "http://imagebot.example"  # over http, so that the test client sends the cookie back
CSRF = re.compile(r'name="csrf-token" content="([^"]+)"')


@pytest.fixture
async def client(pipeline: Pipeline) -> AsyncIterator[TestClient]:  # noqa: F811
    """The web app of a community deployment (links from the bots), over the pipeline's service."""
    runtime = pipeline.runtime
    settings = community(runtime.settings, PUBLIC)
    app = build_app(settings, runtime.service, runtime.redis, consumer_name="web-sec", tuning=FAST)
    async with TestClient(TestServer(app), cookie_jar=CookieJar(unsafe=True)) as test_client:
        yield test_client


def settings_of(client: TestClient) -> Settings:
    from bots.web.context import CONTEXT

    return client.app[CONTEXT].settings  # type: ignore[index]


def path_of(link: str | None) -> str:
    assert link is not None
    return link.removeprefix(PUBLIC)


async def csrf(client: TestClient, page: str = "/gallery") -> str:
    response = await client.get(page)
    assert response.status == 200
    found = CSRF.search(await response.text())
    assert found is not None
    return found.group(1)


async def test_a_gallery_link_opens_that_users_own_results_only(
    client: TestClient,
    pipeline: Pipeline,  # noqa: F811
) -> None:
    service = pipeline.runtime.service
    alices = await planted(service, ALICE, (200, 30, 30))
    bobs = await planted(service, BOB, (30, 30, 200))
    assert (await client.get("/gallery")).status == 403  # no link, no session, no page

    opened = await client.get(
        path_of(page_link(settings_of(client), ALICE, "gallery")), allow_redirects=False
    )
    assert opened.status == 303 and opened.headers["Location"] == "/gallery"
    cookie = opened.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie

    results = (await (await client.get("/api/gallery")).json())["results"]
    assert [r["request_id"] for r in results] == [alices]
    assert results[0]["images"][0]["src"].startswith("/images/")
    assert bobs not in await (await client.get("/gallery")).text()
    shown = await client.get(results[0]["images"][0]["src"])
    assert shown.status == 200 and shown.content_type == "image/png"


async def test_expired_and_forged_links_are_refused(client: TestClient, pipeline: Pipeline) -> None:  # noqa: F811
    settings = settings_of(client)
    expired = page_link(settings, ALICE, "gallery", now=time.time() - settings.web.link_ttl_s - 1)
    response = await client.get(path_of(expired), allow_redirects=False)
    assert response.status == 403 and "expired" in await response.text()
    assert "Set-Cookie" not in response.headers

    claims = LinkClaims(requester=ALICE, expires_at=int(time.time()) + 600)
    for token in (
        sign(claims, "another secret of at least 32 characters!"),  # signed by someone else
        sign(claims, SECRET).replace(".", "x.", 1),  # altered payload
        sign(claims, SECRET, purpose="session"),  # a session cookie passed off as a link
        "garbage",
    ):
        response = await client.get(f"/link/{token}", allow_redirects=False)
        assert response.status == 403 and "This link isn" in await response.text(), token
        assert "Set-Cookie" not in response.headers
    assert (await client.get("/api/gallery")).status == 403


async def test_a_link_cannot_open_someone_elses_image(client: TestClient, pipeline: Pipeline) -> None:  # noqa: F811
    service = pipeline.runtime.service
    bobs = await planted(service, BOB, (30, 30, 200))
    alices = await planted(service, ALICE, (200, 30, 30))
    settings = settings_of(client)
    # A region link signed for Alice that names Bob's image: refused, and no session is made.
    forged_scope = await client.get(path_of(region_link(settings, ALICE, bobs, 0)), allow_redirects=False)
    assert forged_scope.status == 403 and "Only the person who asked" in await forged_scope.text()
    assert "Set-Cookie" not in forged_scope.headers

    # Alice's own region link works, and her session still can't open, press or delete Bob's.
    opened = await client.get(path_of(region_link(settings, ALICE, alices, 0)), allow_redirects=False)
    assert opened.headers["Location"] == f"/region/{alices}/0"
    token = await csrf(client, f"/region/{alices}/0")
    assert (await client.get(f"/region/{bobs}/0")).status == 403
    headers = {"X-CSRF-Token": token}
    pressed = await client.post("/api/press", json={"button": f"ib:u:{bobs}:0"}, headers=headers)
    assert pressed.status == 403
    deleted = await client.post("/api/delete", json={"request_id": bobs}, headers=headers)
    assert deleted.status == 403
    assert (await service.results.load(bobs)).images  # Bob's image is still there


async def test_a_change_without_the_sessions_csrf_token_is_refused(
    client: TestClient,
    pipeline: Pipeline,  # noqa: F811
) -> None:
    service = pipeline.runtime.service
    alices = await planted(service, ALICE, (200, 30, 30))
    await client.get(path_of(page_link(settings_of(client), ALICE, "gallery")))
    token = await csrf(client)
    for headers in (
        {},
        {"X-CSRF-Token": "not-the-token"},
        {"X-CSRF-Token": token, "Origin": "https://evil.example"},
    ):
        refused = await client.post("/api/delete", json={"request_id": alices}, headers=headers)
        assert refused.status == 403, headers
        assert "reload it" in (await refused.json())["error"]
    key = (await service.results.load(alices)).images[0].key

    deleted = await client.post("/api/delete", json={"request_id": alices}, headers={"X-CSRF-Token": token})
    assert deleted.status == 200
    assert (await (await client.get("/api/gallery")).json())["results"] == []
    assert not (await service.results.load(alices)).images
    with pytest.raises(StorageError):
        await service.store.get(key)  # the file is gone too


async def test_pages_carry_a_strict_policy_and_bodies_are_limited(
    client: TestClient,
    pipeline: Pipeline,  # noqa: F811
) -> None:
    await client.get(path_of(page_link(settings_of(client), ALICE, "chat")))
    page = await client.get("/")
    policy = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "default-src 'none'" in policy and "unsafe-inline" not in policy
    assert page.headers["X-Frame-Options"] == "DENY" and page.headers["Referrer-Policy"] == "no-referrer"
    assert "<script>" not in await page.text()  # no inline script: every script is a file
    token = CSRF.search(await page.text()).group(1)  # type: ignore[union-attr]
    limit = settings_of(client).web.max_body_bytes
    huge = {"request_id": "a" * 16, "index": 0, "mask": "data:image/png;base64," + "A" * limit}
    response = await client.post("/api/region", json=huge, headers={"X-CSRF-Token": token})
    assert response.status == 413 and "at most" in (await response.json())["error"]
    assert (await client.get("/images/../../etc/passwd")).status in (403, 404)
    assert (await client.get("/images/inputs.png")).status == 404


async def test_over_https_the_session_cookie_is_secure(pipeline: Pipeline) -> None:  # noqa: F811
    runtime = pipeline.runtime
    settings = community(runtime.settings, "https://imagebot.example")
    app = build_app(settings, runtime.service, runtime.redis, consumer_name="web-tls", tuning=FAST)
    async with TestClient(TestServer(app)) as client:
        link = page_link(settings, ALICE, "gallery")
        assert link is not None and link.startswith("https://imagebot.example/link/")
        opened = await client.get(link.removeprefix("https://imagebot.example"), allow_redirects=False)
        cookie = opened.headers["Set-Cookie"]
        assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


async def test_the_gallery_pages_through_ones_own_results(client: TestClient, pipeline: Pipeline) -> None:  # noqa: F811
    service = pipeline.runtime.service
    made = [await planted(service, ALICE, (i * 40, 0, 0)) for i in range(5)]
    await client.get(path_of(page_link(settings_of(client), ALICE, "gallery")))
    first = await (await client.get("/api/gallery")).json()
    assert [r["request_id"] for r in first["results"]] == made[::-1][:4] and first["total"] == 5
    rest = await (await client.get(f"/api/gallery?older={first['older']}")).json()
    assert [r["request_id"] for r in rest["results"]] == [made[0]] and rest["older"] is None


async def test_a_page_hears_only_its_own_users_events(client: TestClient, pipeline: Pipeline) -> None:  # noqa: F811
    redis = pipeline.runtime.redis
    await client.get(path_of(page_link(settings_of(client), ALICE, "chat")))
    stream = await client.get("/api/events")
    assert (await stream.content.readline()).startswith(b"retry:")
    publisher = EventPublisher(redis)
    for who, request_id in ((BOB, "b" * 16), (ALICE, "a" * 16)):
        await publisher.publish(
            ResultEvent(kind=EventKind.PROGRESS, request_id=request_id, requester=who, step=1, total_steps=2)
        )
    async with asyncio.timeout(10):
        while not (line := await stream.content.readline()).startswith(b"data: "):
            pass
    view = json.loads(line[6:])
    assert view == {
        "request_id": "a" * 16, "kind": "progress", "text": "Rendering… 50%", "step": 1, "total": 2,
    }  # fmt: skip
