"""Many processes on one Redis: 3 workers and a Telegram webhook pair; one of each SIGKILLed mid-burst.

    .venv/bin/python -m bench.cluster [--requests 60] [--kill-after 20] [--spacing 0.05]

Starts an embedded Redis, the Telegram Bot API emulator (tests/emulators) in this process, three `imagebot worker
--queue gpu` processes on the tiny model and two `imagebot telegram` processes behind one webhook URL. This
process plays Telegram and the load balancer in front of the pair: each user's /imagine goes to the bots in
turn, and an update a bot did not answer 200 (refused connection, reset, error) is sent again to the other one,
as Telegram retries a webhook. After `--kill-after` updates, one worker and one bot get SIGKILL. Then it waits
for every request's picture and counts: lost (acknowledged, never delivered), delivered twice, and the time to
recover (from the kill until the last request in flight at that moment got its picture), beside the ordinary
latency. Leases are short here (IMAGEBOT_WORKER__HEARTBEAT_INTERVAL_S, IMAGEBOT_DELIVERY__CLAIM_IDLE_S and
__LEASE_S below); recovery scales with them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from arq.constants import result_key_prefix

from cli.redis_server import EmbeddedRedis, _free_port
from core import constants as c
from core.jobs.connection import connect, load_job
from core.jobs.workers import WorkerRegistry
from tests.emulators.telegram_api import Chat, TelegramEmulator, User

WORKERS, BOTS = 3, 2
SECRET = "bench-cluster-secret"
PUBLIC_URL = "https://bot.example.org/tg/hook"
TUNING = {  # short leases, so recovery takes seconds (the defaults: heartbeat 5 s, claim 15 s, lease 30 s)
    "IMAGEBOT_WORKER__HEARTBEAT_INTERVAL_S": "0.5",
    "IMAGEBOT_DELIVERY__CLAIM_IDLE_S": "2",
    "IMAGEBOT_DELIVERY__LEASE_S": "3",
}


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    port: int | None = None  # a bot's webhook port

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait()

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class Cluster:
    workdir: Path
    redis_url: str
    emulator: TelegramEmulator
    workers: list[Process] = field(default_factory=list)
    bots: list[Process] = field(default_factory=list)

    def environment(self, **extra: str) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith("IMAGEBOT_")}
        return (
            base
            | TUNING
            | {
                "IMAGEBOT_REDIS_URL": self.redis_url,
                "IMAGEBOT_DATA_DIR": str(self.workdir / "data"),
                "IMAGEBOT_STORAGE__LOCAL_DIR": str(self.workdir / "images"),
                "IMAGEBOT_STORAGE__SERVE_PORT": "0",
                "IMAGEBOT_WORKER__MODEL_CACHE_DIR": str(self.workdir / "models"),
                "IMAGEBOT_WORKER__POLL_DELAY_S": "0.05",
                "IMAGEBOT_WORKER__DEVICE": "cpu",
                "IMAGEBOT_MODERATION__IMAGE_CHECK": "false",
                "IMAGEBOT_QUOTAS__ENABLED": "false",
                "IMAGEBOT_LOG_LEVEL": "WARNING",
                "OMP_NUM_THREADS": "1",
                "OPENAI_API_KEY": "",
            }
            | extra
        )

    def spawn(self, name: str, args: list[str], env: dict[str, str], port: int | None = None) -> Process:
        log = (self.workdir / f"{name}.log").open("wb")
        popen = subprocess.Popen(
            [sys.executable, "-m", "cli.main", *args], env=env, stdout=log, stderr=subprocess.STDOUT
        )
        return Process(name, popen, port)

    def start_workers(self) -> None:
        for i in range(WORKERS):
            env = self.environment(IMAGEBOT_WORKER__NAME=f"worker-{i}")
            self.workers.append(self.spawn(f"worker-{i}", ["worker", "--queue", "gpu"], env))

    def start_bots(self) -> None:
        emulator = self.emulator
        for i in range(BOTS):
            port = _free_port()
            env = self.environment(
                IMAGEBOT_TELEGRAM__TOKEN=emulator.token,
                IMAGEBOT_TELEGRAM__BASE_URL=emulator.base_url,
                IMAGEBOT_TELEGRAM__BASE_FILE_URL=emulator.base_file_url,
                IMAGEBOT_TELEGRAM__WEBHOOK_URL=PUBLIC_URL,
                IMAGEBOT_TELEGRAM__WEBHOOK_SECRET=SECRET,
                IMAGEBOT_TELEGRAM__WEBHOOK_LISTEN="127.0.0.1",
                IMAGEBOT_TELEGRAM__WEBHOOK_PORT=str(port),
                IMAGEBOT_DELIVERY__CONSUMER=f"telegram-{i}",
            )
            self.bots.append(self.spawn(f"bot-{i}", ["telegram"], env, port))

    def stop(self) -> None:
        for process in [*self.bots, *self.workers]:
            process.stop()


async def wait_workers(redis_url: str, count: int, within_s: float) -> None:
    redis = connect(redis_url)
    try:
        deadline = time.monotonic() + within_s
        while len([w for w in await WorkerRegistry(redis).alive() if w.queue == c.QUEUE_GPU]) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{count} workers did not start within {within_s:.0f} s")
            await asyncio.sleep(0.2)
    finally:
        await redis.aclose()


async def wait_listening(bots: list[Process], within_s: float) -> None:
    """Until each bot's webhook answers (403 to a request without the secret)."""
    deadline = time.monotonic() + within_s
    async with aiohttp.ClientSession() as session:
        for bot in bots:
            while True:
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.post(f"http://127.0.0.1:{bot.port}/tg/hook", json={}) as response:
                        if response.status == 403:
                            break
                if time.monotonic() > deadline or bot.popen.poll() is not None:
                    raise TimeoutError(f"{bot.name} is not listening; see its log")
                await asyncio.sleep(0.2)


@dataclass
class Asked:
    chat_id: int
    message_id: int
    posted_at: float
    bot: str = ""
    tries: int = 0
    cut_off: bool = False  # a bot took the update and died before answering it


async def deliver(cluster: Cluster, update: dict[str, object], asked: Asked, turn: int) -> None:
    """Telegram and the load balancer: POST the update to a bot; on anything but 200, to the other, again."""
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        while True:
            bot = cluster.bots[(turn + asked.tries) % len(cluster.bots)]
            asked.tries += 1
            try:
                headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
                url = f"http://127.0.0.1:{bot.port}/tg/hook"
                async with session.post(url, json=update, headers=headers) as response:
                    if response.status == 200:
                        asked.bot = bot.name
                        return
            except aiohttp.ClientConnectorError:
                pass  # nobody listening: a load balancer tries the next one
            except (aiohttp.ClientError, TimeoutError):
                asked.cut_off = True
            await asyncio.sleep(0.2)


def photos(emulator: TelegramEmulator, asked: Asked) -> list[float]:
    return [  # a live preview's photo (sent silently) is not a delivery
        s.at
        for s in emulator.in_chat(asked.chat_id, "sendPhoto")
        if s.reply_to == asked.message_id and not s.silent
    ]


async def jobs_run_again(redis_url: str) -> int:
    """Jobs whose arq result says they took more than one try (their first worker died under them)."""
    redis = connect(redis_url)
    try:
        rerun = 0
        async for key in redis.scan_iter(match=result_key_prefix + "*", count=500):
            raw = await redis.get(key)
            rerun += raw is not None and load_job(raw).get("t", 1) > 1
        return rerun
    finally:
        await redis.aclose()


@dataclass
class Figures:
    requests: int
    delivered: int
    lost: int
    duplicated: int
    cut_off: int
    rerun: int
    recover_s: float
    p50_s: float
    in_flight_at_kill: int

    def lines(self) -> Iterator[str]:
        yield (
            f"{self.requests} requests through {BOTS} bots and {WORKERS} workers; "
            f"one of each SIGKILLed with {self.in_flight_at_kill} requests in flight"
        )
        yield (
            f"delivered {self.delivered}, lost {self.lost}, delivered twice {self.duplicated}; "
            f"updates the killed bot took without answering (sent again to the other): {self.cut_off}; "
            f"jobs run again after the killed worker's lease lapsed: {self.rerun}"
        )
        yield (
            f"time to recover: {self.recover_s:.1f} s after the kill the last request in flight had its "
            f"picture (ordinary latency p50 {self.p50_s:.1f} s)"
        )


async def burst(cluster: Cluster, requests: int, kill_after: int, spacing_s: float) -> Figures:
    emulator = cluster.emulator
    asked: list[Asked] = []
    posts = []
    killed_at = 0.0
    for i in range(requests):
        user = User(7000 + i, f"User{i}")
        message = emulator.compose(Chat(user.id), user, f"/imagine a boat number {i} --n 1")
        entry = Asked(user.id, message["message_id"], time.monotonic())
        asked.append(entry)
        posts.append(
            asyncio.create_task(deliver(cluster, {"update_id": 900_000 + i, "message": message}, entry, i))
        )
        if i + 1 == kill_after:
            cluster.workers[0].kill()
            cluster.bots[0].kill()
            killed_at = time.monotonic()
        await asyncio.sleep(spacing_s)
    await asyncio.gather(*posts)
    in_flight = [
        a for a in asked if a.posted_at < killed_at and not any(t < killed_at for t in photos(emulator, a))
    ]
    with contextlib.suppress(TimeoutError):
        await emulator.wait_for(lambda: all(photos(emulator, a) for a in asked) or None, 180)
    await asyncio.sleep(2.0)  # a duplicate would arrive now
    got = [photos(emulator, a) for a in asked]
    recover = max(
        (min(photos(emulator, a), default=float("inf")) - killed_at for a in in_flight), default=0.0
    )
    latencies = [
        min(p) - a.posted_at for a, p in zip(asked, got, strict=True) if p and a.posted_at > killed_at
    ]
    return Figures(
        requests=requests,
        delivered=sum(bool(p) for p in got),
        lost=sum(not p for p in got),
        duplicated=sum(len(p) > 1 for p in got),
        cut_off=sum(a.cut_off for a in asked),
        rerun=await jobs_run_again(cluster.redis_url),
        recover_s=recover,
        p50_s=statistics.median(latencies) if latencies else float("nan"),
        in_flight_at_kill=len(in_flight),
    )


async def run(requests: int, kill_after: int, spacing_s: float, workdir: Path) -> Figures:
    from worker.tiny import ensure_tiny_model

    ensure_tiny_model(workdir / "models")  # built once here, not by three workers at once
    emulator = TelegramEmulator()
    await emulator.start()
    with EmbeddedRedis(protected=False) as redis_server:
        cluster = Cluster(workdir, redis_server.url, emulator)
        try:
            cluster.start_workers()
            cluster.start_bots()
            await wait_workers(redis_server.url, WORKERS, 180)
            await wait_listening(cluster.bots, 120)
            return await burst(cluster, requests, kill_after, spacing_s)
        finally:
            cluster.stop()
            await emulator.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--kill-after", type=int, default=20)
    parser.add_argument("--spacing", type=float, default=0.05, help="seconds between two users' messages")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="imagebot-cluster-") as tmp:
        figures = asyncio.run(run(args.requests, args.kill_after, args.spacing, Path(tmp)))
    for line in figures.lines():
        print(line)


if __name__ == "__main__":
    main()
