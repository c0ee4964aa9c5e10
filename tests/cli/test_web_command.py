"""`imagebot web` as a newcomer runs it: no settings, so an embedded Redis, an in-process worker and local storage
behind the pages, for one local user; SIGTERM stops it cleanly."""

from __future__ import annotations

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

from tests.cli.test_imagine_command import ROOT

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
