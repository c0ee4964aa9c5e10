"""The embedded Redis: what it was told survives a crash, old data folders keep their data, and it asks for a
password that only the URL it hands out carries."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import redis
from redis.exceptions import RedisError

from cli.redis_server import AOF_FILE, EmbeddedRedis
from cli.runtime import open_runtime
from core.settings import Settings
from tests.settings import with_settings


def test_a_key_written_just_before_a_crash_survives_the_restart(tmp_path: Path) -> None:
    server = EmbeddedRedis(data_dir=tmp_path / "redis").start()
    try:
        with redis.Redis.from_url(server.url) as client:
            client.set("imagebot:ban:global:telegram:42", "1")
        server.kill()  # SIGKILL: no final snapshot, as a crash or the OOM killer would stop it
        server.start()
        with redis.Redis.from_url(server.url) as client:
            assert client.get("imagebot:ban:global:telegram:42") == b"1"
    finally:
        server.stop()


def test_a_data_folder_from_before_append_only_persistence_keeps_its_data(tmp_path: Path) -> None:
    folder = tmp_path / "redis"
    server = EmbeddedRedis(data_dir=folder).start()
    with redis.Redis.from_url(server.url) as client:  # make it look like an old folder: a snapshot only
        client.set("imagebot:quota:old", "7")
        client.config_set("appendonly", "no")
        client.save()
    server.stop()
    (folder / AOF_FILE).unlink()
    assert (folder / "dump.rdb").exists()

    server = EmbeddedRedis(data_dir=folder).start()
    try:
        with redis.Redis.from_url(server.url) as client:
            assert client.get("imagebot:quota:old") == b"7"
            client.set("imagebot:quota:new", "8")
        assert (folder / AOF_FILE).exists()
        server.kill()
        server.start()
        with redis.Redis.from_url(server.url) as client:
            assert client.mget("imagebot:quota:old", "imagebot:quota:new") == [b"7", b"8"]
    finally:
        server.stop()


def test_the_embedded_redis_wants_the_random_password_its_url_carries() -> None:
    with EmbeddedRedis() as server, EmbeddedRedis() as other:
        assert server.password and other.password and server.password != other.password
        assert f":{server.password}@127.0.0.1:{server.port}/0" in server.url
        with redis.Redis(host="127.0.0.1", port=server.port) as anonymous, pytest.raises(RedisError):
            anonymous.set("imagebot:job", "code")
        with redis.Redis.from_url(server.url) as client:
            assert client.ping()


async def test_the_runtime_uses_a_protected_embedded_redis_and_never_logs_its_password(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with open_runtime(with_settings(settings, redis_url=None)) as runtime:
        url = runtime.settings.redis_url
        assert url is not None and url.startswith("redis://:")
        password = url.split(":")[2].split("@")[0]
        assert await runtime.redis.ping()
    assert password and password not in caplog.text
