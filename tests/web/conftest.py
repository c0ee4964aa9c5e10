"""The web front end under test: the real aiohttp app over the real pipeline (Redis, service, in-process worker),
served on a free port, and a headless Chromium (Debian's, never a downloaded one) driven by Playwright."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web
from pydantic import SecretStr

from bots.web import Tuning, build_app
from core.settings import Settings, WebSettings
from tests.pipeline_fixture import Pipeline, pipeline  # noqa: F401
from tests.settings import with_settings

CHROMIUM = os.environ.get("IMAGEBOT_CHROMIUM", "/usr/bin/chromium")
FAST = Tuning(event_block_ms=100, keepalive_s=1.0, stop_grace_s=1.0)
SECRET = "s" * 40


def community(settings: Settings, public_url: str = "https://imagebot.example") -> Settings:
    """The same settings as a community deployment: a web secret and the public address of the pages."""
    web_settings = WebSettings(secret=SecretStr(SECRET), public_url=public_url)
    return with_settings(settings, web=web_settings)


@dataclass
class WebServer:
    url: str
    app: web.Application


@pytest.fixture
async def web_server(pipeline: Pipeline) -> AsyncIterator[WebServer]:  # noqa: F811
    """The embedded default (one local user), with a worker rendering `tiny`, on a free port."""
    await pipeline.start_worker()
    runtime = pipeline.runtime
    app = build_app(runtime.settings, runtime.service, runtime.redis, consumer_name="web-test", tuning=FAST)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield WebServer(f"http://{host}:{port}", app)
    finally:
        await runner.cleanup()


@pytest.fixture
def artefacts(tmp_path: Path) -> Path:
    """Where screenshots go: $IMAGEBOT_TEST_ARTEFACTS (kept by CI) or the test's tmp_path; printed."""
    base = os.environ.get("IMAGEBOT_TEST_ARTEFACTS")
    folder = Path(base) / "web" if base else tmp_path / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    print(f"screenshots in {folder}")
    return folder


def chromium_or_skip() -> str:
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium; CI's .ci/run installs it)")
    pytest.importorskip("playwright.async_api", reason="the playwright package is not installed")
    return CHROMIUM
