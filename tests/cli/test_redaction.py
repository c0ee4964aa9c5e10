"""Secrets never reach stderr: the root handlers' filter (messages, tracebacks, any logger, any library) and the
exceptions that end the process (defect 10)."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from pydantic import SecretStr

from cli.redaction import MASK, Redactor, install
from cli.redis_server import EmbeddedRedis
from core.settings import DiscordSettings, OpenAISettings, Settings, TelegramSettings

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "123456789:AAE-not-a-real-token-but-secret-0123"
SECRET_HALF = TOKEN.split(":", 1)[1]


def secret_settings() -> Settings:
    return Settings(
        redis_url="redis://:redis-pass-word@127.0.0.1:6379/0",
        telegram=TelegramSettings(token=SecretStr(TOKEN), webhook_secret=SecretStr("hook-secret_value")),
        discord=DiscordSettings(token=SecretStr("MTAx.discord-bot-token.abcdefghijkl")),
        openai=OpenAISettings(api_key=SecretStr("sk-openai-key-0123456789")),
    )


def test_every_secret_in_the_settings_is_masked() -> None:
    redactor = Redactor.from_settings(secret_settings(), environ={"AWS_SECRET_ACCESS_KEY": "aws/secret+key"})
    text = (
        f"GET https://api.telegram.org/bot{TOKEN}/getMe; half {SECRET_HALF}; quoted "
        "123456789%3AAAE-not-a-real-token-but-secret-0123; hook-secret_value; MTAx.discord-bot-token.abcdefghijkl; "
        "sk-openai-key-0123456789; redis://:redis-pass-word@host; aws/secret+key"
    )
    cleaned = redactor.redact(text)
    for secret in (
        TOKEN,
        SECRET_HALF,
        "hook-secret_value",
        "discord-bot-token",
        "sk-openai",
        "redis-pass-word",
        "aws/secret",
        "%3AAAE",
    ):
        assert secret not in cleaned
    assert cleaned.startswith(f"GET https://api.telegram.org/bot{MASK}/getMe")


def test_secret_shaped_strings_are_masked_even_when_not_configured() -> None:
    redactor = Redactor([])
    other_bot = "/bot987654321:AAF-another-bots-token-0123456789/sendMessage"
    interaction = "POST /interactions/1234567890/aW50ZXJhY3Rpb246MTIzNDU2Nzg5MDpzZWNyZXQ/callback"
    payload = "{'url': 'https://x/hook', 'secret_token': 'generated-at-start'}"
    cleaned = redactor.redact(" ".join([other_bot, interaction, payload]))
    assert "AAF-another" not in cleaned and "aW50ZXJhY3Rpb24" not in cleaned
    assert "generated-at-start" not in cleaned and f"'secret_token': '{MASK}'" in cleaned


@pytest.fixture
def root_stream() -> Iterator[tuple[logging.Handler, io.StringIO]]:
    """A handler on the root logger writing to a string, as basicConfig's stderr handler would."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    level = root.level
    root.setLevel(logging.DEBUG)
    try:
        yield handler, stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def test_tracebacks_and_loggers_created_later_are_masked_at_the_root_handler(
    root_stream: tuple[logging.Handler, io.StringIO],
) -> None:
    handler, stream = root_stream
    install(Redactor.from_settings(secret_settings()), [handler])
    later = logging.getLogger(f"some.library.created.later.{id(stream)}")  # after the filter went in
    later.info("calling %s", f"https://api.telegram.org/bot{TOKEN}/getUpdates")
    try:
        raise RuntimeError(f"The token `{TOKEN}` was rejected by the server.")
    except RuntimeError:
        later.exception("start-up failed")
    logging.getLogger("httpx").warning("HTTP Request: POST /bot%s/getMe", TOKEN)
    later.debug("a %s stack", SECRET_HALF, stack_info=True)
    output = stream.getvalue()
    assert "Traceback (most recent call last)" in output and "was rejected by the server" in output
    assert TOKEN not in output and SECRET_HALF not in output
    assert "Stack (most recent call last)" in output
    assert output.count(MASK) >= 4


def run_cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("IMAGEBOT_", "OPENAI_"))}
    environment |= {"PYTHONPATH": str(ROOT)} | env
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


class WrongServer(BaseHTTPRequestHandler):
    """Something that is not the Bot API at the configured URL: 404 to everything, as Telegram answers a
    request with a bad path or token (PTB then raises InvalidToken with the token in its message)."""

    def do_POST(self) -> None:
        body = json.dumps({"ok": False, "error_code": 404, "description": "Not Found"}).encode()
        self.send_response(404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def wrong_server() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), WrongServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/bot"
    finally:
        server.shutdown()
        server.server_close()


def closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # nothing listens there once the socket is closed


@pytest.mark.parametrize("where", ["closed port", "wrong server"])
def test_a_wrong_base_url_never_prints_the_token(
    where: str, wrong_server: str, redis_server: EmbeddedRedis, tmp_path: Path
) -> None:
    base_url = wrong_server if where == "wrong server" else f"http://127.0.0.1:{closed_port()}/bot"
    result = run_cli(
        "telegram",
        cwd=tmp_path,
        env={
            "IMAGEBOT_TELEGRAM__TOKEN": TOKEN,
            "IMAGEBOT_TELEGRAM__BASE_URL": base_url,
            "IMAGEBOT_REDIS_URL": redis_server.url,
            "IMAGEBOT_LOG_LEVEL": "DEBUG",
            "IMAGEBOT_DATA_DIR": str(tmp_path / "data"),
        },
    )
    assert result.returncode != 0
    assert "Traceback" in result.stderr  # it did fail loudly…
    if where == "wrong server":
        assert f"The token `{MASK}` was rejected by the server." in result.stderr
    assert TOKEN not in result.stderr and SECRET_HALF not in result.stderr  # …without the token
    assert TOKEN not in result.stdout and SECRET_HALF not in result.stdout
