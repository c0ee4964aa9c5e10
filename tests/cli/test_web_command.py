"""`imagebot web` as a newcomer runs it: no settings, so an embedded Redis, an in-process worker and local storage
behind the pages, for one local user; SIGTERM stops it cleanly, and a second one does not cut that stop short."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path

import redis.asyncio as aioredis

from bots.web.app import run_web_bot
from cli.web import run_web
from core import constants as c
from core.delivery.events import EventPublisher, stream_key
from core.models.ids import new_request_id
from core.models.request import Platform, Requester
from core.models.result import EventKind, ResultEvent
from core.settings import Settings
from tests.cancel_points import CancelPoints
from tests.cli.test_imagine_command import ROOT
from tests.settings import with_settings

CSRF = re.compile(r'name="csrf-token" content="([^"]+)"')


def test_the_embedded_web_page_renders_and_serves_the_images(tmp_path: Path) -> None:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("IMAGEBOT_", "OPENAI_"))}
    environment |= {
        "PYTHONPATH": str(ROOT),
        "IMAGEBOT_WORKER__MODEL_CACHE_DIR": str(tmp_path.parent / "models"),
        "OMP_NUM_THREADS": "1",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "cli", "web", "--port", "0"],
        cwd=tmp_path,
        env=environment,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        url = None
        for line in process.stderr:  # the announcement comes once the worker serves and the pages listen
            found = re.search(r"open (http://127\.0\.0\.1:\d+)/", line)
            if found:
                url = found.group(1)
                break
        assert url is not None, "no URL announced"
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
        with opener.open(f"{url}/") as page:
            html = page.read().decode()
            assert "script-src 'self'" in page.headers["Content-Security-Policy"]
        token = CSRF.search(html).group(1)  # type: ignore[union-attr]
        ask = urllib.request.Request(
            f"{url}/api/imagine",
            data=json.dumps({"text": "a lighthouse --seed 5 --n 1"}).encode(),
            headers={"Content-Type": "application/json", "X-CSRF-Token": token},
        )
        with opener.open(ask) as response:
            request_id = json.load(response)["request_id"]
        deadline = time.monotonic() + 120
        view = {"kind": "pending"}
        while view["kind"] == "pending" and time.monotonic() < deadline:
            time.sleep(0.5)
            with opener.open(f"{url}/api/result/{request_id}") as response:
                view = json.load(response)
        assert view["kind"] == "done", view
        with opener.open(url + view["images"][0]["src"]) as image:
            assert image.headers["Content-Type"] == "image/png" and image.read(8) == b"\x89PNG\r\n\x1a\n"
        assert (tmp_path / "imagebot-data" / "storage").is_dir()
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0


def test_a_port_out_of_range_is_refused_naming_the_option(tmp_path: Path) -> None:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("IMAGEBOT_", "OPENAI_"))}
    environment |= {"PYTHONPATH": str(ROOT)}
    run = [sys.executable, "-m", "cli", "web", "--port", "70000"]
    done = subprocess.run(
        run, check=False, cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert "--port: Input should be less than 65536" in done.stderr


async def test_a_second_cancel_while_the_pages_stop_lets_them_stop_then_is_raised(
    settings: Settings, redis: aioredis.Redis
) -> None:
    """The pages' own shutdown (their result consumer among it) runs to its end through a second cancel, which
    then stops `imagebot web` as it was told to. Before, the second cancel was handed on to the pages' shutdown,
    cutting it short: a result consumer could be left reading the stream, and the cancel itself was swallowed."""
    settings = with_settings(settings, web={"port": 0})

    async def stopped(web: asyncio.Task[int], where: str) -> None:
        done, _ = await asyncio.wait({web}, timeout=20)
        assert done, f"imagebot web cancelled {where} did not stop"
        assert web.cancelled(), f"cancelled {where}, it returned {web.result()}"

    async def started() -> asyncio.Task[int]:
        listening = asyncio.Event()
        web = asyncio.create_task(run_web(settings, with_worker=False, ready=lambda _: listening.set()))
        await asyncio.wait_for(listening.wait(), 20)
        return web

    with CancelPoints(run_web_bot) as points:
        web = await started()
        before = points.suspensions
        web.cancel()
        await stopped(web, "once")
        awaits = points.suspensions - before + 2
        for n in range(1, awaits + 1):
            web = await started()
            web.cancel()
            points.cancel_at(web, n)
            await stopped(web, f"again at await #{n} of the pages' shutdown ({points.where})")
    assert awaits > 3

    # No consumer of a stopped run reads the stream any more: a result published now stays undelivered.
    stream = stream_key(Platform.WEB)
    read_before = await _last_delivered(redis, stream)
    requester = Requester(platform=Platform.WEB, user_id="1", chat_id="1")
    await EventPublisher(redis).publish(
        ResultEvent(kind=EventKind.NOTICE, request_id=new_request_id(), message="hi", requester=requester)
    )
    await asyncio.sleep(1.5)  # longer than a consumer's read waits
    assert await _last_delivered(redis, stream) == read_before


async def _last_delivered(redis: aioredis.Redis, stream: str) -> bytes:
    groups = await redis.xinfo_groups(stream)
    return next(g["last-delivered-id"] for g in groups if g["name"].decode() == c.EVENTS_GROUP)
