"""`imagebot telegram --with-worker` as an operator runs it, against the Telegram Bot API emulator.

A message that waited while the bot was down is answered once the in-process worker serves (not refused while it
loads its models), and the result's "Full size" link opens the stored image over HTTP.
"""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from pathlib import Path

import aiohttp
import pytest
import redis.asyncio as aioredis
from pydantic import SecretStr

from cli.bots import run_bot, serve_local_images
from core.settings import Settings, StorageSettings, TelegramSettings
from core.storage.factory import build_store
from tests.emulators.telegram_api import Chat, Sent, TelegramEmulator, User
from tests.emulators.telegram_fixture import telegram_emulator_fixture  # noqa: F401
from tests.settings import with_settings

ROOT = Path(__file__).resolve().parents[2]

ALICE = User(2001, "Alice", "alice")
STOPPED_WITHIN_S = 60  # the delivery grace (5 s) and the worker's stop take seconds at most


def local_storage(settings: Settings, **changes: object) -> Settings:
    return with_settings(settings, storage={"serve_port": 0, **changes})


async def fetch(url: str) -> tuple[int, bytes]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.read()


async def test_a_message_sent_while_the_bot_was_down_is_served_by_the_starting_worker(
    telegram_emulator: TelegramEmulator, settings: Settings, redis: aioredis.Redis
) -> None:
    emulator = telegram_emulator
    telegram = TelegramSettings(
        token=SecretStr(emulator.token), base_url=emulator.base_url, base_file_url=emulator.base_file_url
    )
    bot_settings = with_settings(local_storage(settings), telegram=telegram)
    asked = await emulator.user_message(Chat(ALICE.id), ALICE, "/imagine a lighthouse at dusk --n 2")
    running = asyncio.create_task(run_bot("telegram", bot_settings, with_worker=True))
    try:

        def outcome() -> Sent | None:
            """The result's photo, or the refusal the status message showed instead."""
            photos = [
                s for s in emulator.in_chat(ALICE.id, "sendPhoto") if not s.silent
            ]  # not a live preview
            refused = [
                s for s in emulator.in_chat(ALICE.id) if any("No image generator" in h for h in s.history)
            ]
            return next(iter(photos or refused), None)

        photo = await emulator.wait_for(outcome, 240)
        assert photo.method == "sendPhoto", photo.history
        status = next(
            s for s in emulator.in_chat(ALICE.id, "sendMessage") if s.reply_to == asked["message_id"]
        )
        # acknowledged with the queue position, or plainly when the worker had taken the job already
        assert any(
            shown.startswith("Queued — position 1") or shown == "Queued" for shown in status.history
        ), status.history
        links = [button["url"] for button in photo.buttons() if button.get("text") == "Full size"]
        assert links and links[0].startswith("http://127.0.0.1:"), photo.buttons()
        status_code, body = await fetch(links[0])
        assert status_code == 200 and body.startswith(b"\x89PNG")
        key = links[0].split("/", 3)[3]
        assert body == (Path(bot_settings.storage.local_dir) / key).read_bytes()
    finally:
        await emulator.release_polls()
        running.cancel()
        # A bot that does not stop fails here rather than hanging the run. It used to happen in CI: a cancel that
        # reached the result consumer while it stopped its lease renewal was swallowed, and PTB went on polling
        # (tests/bots/telegram/test_shutdown.py cancels a bot at each of its awaits).
        stopped, _ = await asyncio.wait({running}, timeout=STOPPED_WITHIN_S)
        assert stopped, f"the bot did not stop within {STOPPED_WITHIN_S} s of being cancelled"
        assert running.cancelled()
        polls = emulator.polls
        await asyncio.sleep(0.1)
        assert emulator.polls == polls  # nobody polls for a bot that has stopped


async def test_local_images_get_http_links_that_serve_them(settings: Settings) -> None:
    async with AsyncExitStack() as stack:
        served = await serve_local_images(local_storage(settings), stack)
        store = build_store(served)
        key = await store.put(b"\x89PNG\r\n\x1a\n a stored image", "image/png")
        url = await store.url(key)
        assert url.startswith("http://127.0.0.1:")
        assert await fetch(url) == (200, b"\x89PNG\r\n\x1a\n a stored image")
        quarantined = await store.put(b"\x89PNG\r\n\x1a\n refused", "image/png", prefix="quarantine")
        assert (await fetch(f"{served.storage.public_base_url}/{quarantined}"))[0] == 404
    with pytest.raises(aiohttp.ClientConnectionError):  # the server stopped with the bot
        await fetch(url)


async def test_no_server_when_someone_else_serves_the_images(settings: Settings) -> None:
    cdn = local_storage(settings, public_base_url="https://cdn.example/imagebot")
    s3 = with_settings(settings, storage=StorageSettings(backend="s3", s3_bucket="images"))
    async with AsyncExitStack() as stack:
        assert await serve_local_images(cdn, stack) is cdn
        assert await serve_local_images(s3, stack) is s3


async def test_sigterm_stops_a_bot_cleanly(settings: Settings, telegram_emulator, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A deploy's SIGTERM: the bot stops polling and exits 0 (before, the process died of the signal)."""
    import os

    environment = {k: v for k, v in os.environ.items() if not k.startswith(("IMAGEBOT_", "OPENAI_"))}
    environment |= {
        "PYTHONPATH": str(ROOT),
        "IMAGEBOT_REDIS_URL": str(settings.redis_url),
        "IMAGEBOT_DATA_DIR": str(tmp_path),
        "IMAGEBOT_STORAGE__LOCAL_DIR": str(tmp_path / "storage"),
        "IMAGEBOT_STORAGE__SERVE_PORT": "0",
        "IMAGEBOT_TELEGRAM__TOKEN": telegram_emulator.token,
        "IMAGEBOT_TELEGRAM__BASE_URL": telegram_emulator.base_url,
        "IMAGEBOT_TELEGRAM__BASE_FILE_URL": telegram_emulator.base_file_url,
    }
    # A plain Popen read in a thread, not asyncio's subprocess: once, in a full CI run, the asyncio version
    # never saw the child's exit and waited past every timeout (the emulator needs this loop free meanwhile).
    code, output = await asyncio.to_thread(_run_until_polling_then_sigterm, environment)
    assert code == 0, output.decode()
    assert b"SIGTERM: stopping" in output


def _run_until_polling_then_sigterm(environment: dict[str, str]) -> tuple[int, bytes]:
    """Start `imagebot telegram`, wait until it polls, send SIGTERM; its exit code and everything it printed."""
    import signal
    import subprocess
    import sys
    import time

    process = subprocess.Popen(
        [sys.executable, "-m", "cli", "telegram"],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert process.stdout is not None
    output = b""
    try:
        deadline = time.monotonic() + 120
        while b"polling for updates" not in output:
            line = process.stdout.readline()
            assert line, output.decode()
            output += line
            assert time.monotonic() < deadline, output.decode()
        process.send_signal(signal.SIGTERM)
        rest, _ = process.communicate(timeout=60)
        return process.returncode, output + rest
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
