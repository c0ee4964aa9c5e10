"""`imagebot worker` as an operator runs it: a subprocess against the tests' Redis, stopped the ways deploys and
crashes stop it (SIGTERM, SIGKILL), with an in-process worker standing by to take over what it leaves.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from arq.constants import in_progress_key_prefix

from core import constants as c
from core.delivery.events import follow, stream_key
from core.jobs.workers import WorkerRegistry
from core.keys import WORKER_KEY
from core.models.request import Platform, Requester
from core.models.result import EventKind, ResultEvent
from core.settings import Settings
from tests.pipeline_fixture import Pipeline
from tests.settings import with_settings
from worker.jobs import RETRY_MESSAGE

ROOT = Path(__file__).resolve().parents[2]
ALICE = Requester(platform=Platform.CLI, user_id="alice", chat_id="c")
NAME = "subprocess-worker"
LONG = (
    "a lighthouse --steps 20 --n 1"  # the tiny model takes a second or more: long enough to stop it mid-job
)


class WorkerProcess:
    def __init__(self, settings: Settings, model_dir: Path, log: Path, *arguments: str, **env: str) -> None:
        environment = {
            key: value for key, value in os.environ.items() if not key.startswith(("IMAGEBOT_", "OPENAI_"))
        }
        environment |= {
            "IMAGEBOT_REDIS_URL": str(settings.redis_url),
            "IMAGEBOT_DATA_DIR": str(settings.data_dir),
            "IMAGEBOT_STORAGE__LOCAL_DIR": str(settings.storage.local_dir),
            "IMAGEBOT_WORKER__MODEL_CACHE_DIR": str(model_dir),
            "IMAGEBOT_WORKER__NAME": NAME,
            "IMAGEBOT_WORKER__POLL_DELAY_S": "0.05",
            "IMAGEBOT_WORKER__HEARTBEAT_INTERVAL_S": "1",  # leases of 3 s
            "IMAGEBOT_MODERATION__IMAGE_CHECK": "false",
            "PYTHONPATH": str(ROOT),
        } | env
        self.log = log
        self._log_file = log.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "cli", "worker", "--queue", "gpu", *arguments],
            cwd=ROOT,
            env=environment,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
        )

    @property
    def output(self) -> str:
        return self.log.read_text()

    async def serving(self, registry: WorkerRegistry, within_s: float = 120) -> None:
        async with asyncio.timeout(within_s):
            while NAME not in {worker.worker_id for worker in await registry.serving(c.QUEUE_GPU)}:
                assert self.process.poll() is None, self.output
                await asyncio.sleep(0.05)

    async def exit_code(self, within_s: float) -> int:
        return await asyncio.to_thread(self.process.wait, within_s)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._log_file.close()


@pytest.fixture
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.getbasetemp() / "models"


@pytest.fixture
def start(pipeline: Pipeline, model_dir: Path, tmp_path: Path) -> Iterator[type[WorkerProcess]]:
    started: list[WorkerProcess] = []

    class Started(WorkerProcess):
        def __init__(self, *arguments: str, **env: str) -> None:
            log = tmp_path / f"worker{len(started)}.log"
            super().__init__(pipeline.settings, model_dir, log, *arguments, **env)
            started.append(self)

    yield Started  # type: ignore[misc]
    for worker in started:
        worker.close()


async def first(pipeline: Pipeline, request_id: str, kind: EventKind, within_s: float = 120) -> ResultEvent:
    async with asyncio.timeout(within_s):
        async for event in follow(pipeline.runtime.redis, Platform.CLI):
            if event.request_id == request_id and event.kind is kind:
                return event
    raise AssertionError("unreachable")


async def events_of(pipeline: Pipeline, request_id: str) -> list[ResultEvent]:
    entries = await pipeline.runtime.redis.xrange(stream_key(Platform.CLI))
    events = [ResultEvent.model_validate_json(fields[b"event"]) for _, fields in entries]
    return [event for event in events if event.request_id == request_id]


async def standby(pipeline: Pipeline) -> None:
    """An in-process worker on the same queue, started and announced."""
    settings = with_settings(pipeline.settings, worker={"name": "standby"}, moderation={"image_check": False})
    await pipeline.start_worker(settings=settings)
    registry = WorkerRegistry(pipeline.runtime.redis)
    async with asyncio.timeout(60):
        while True:
            if "standby" in {worker.worker_id for worker in await registry.serving(c.QUEUE_GPU)}:
                return
            await asyncio.sleep(0.05)


async def used_today(pipeline: Pipeline) -> int:
    return (await pipeline.runtime.service.admission.quotas.status(ALICE)).used_today


async def test_sigterm_lets_the_running_job_finish_then_exits_0(
    pipeline: Pipeline, start: type[WorkerProcess]
) -> None:
    worker = start(IMAGEBOT_WORKER__DRAIN_S="300")
    redis = pipeline.runtime.redis
    await worker.serving(WorkerRegistry(redis))
    request_id = (await pipeline.runtime.service.imagine(LONG, ALICE)).request_id
    await first(pipeline, request_id, EventKind.STARTED)
    worker.process.send_signal(signal.SIGTERM)
    assert await worker.exit_code(within_s=300) == 0, worker.output
    kinds = [event.kind for event in await events_of(pipeline, request_id)]
    assert kinds.count(EventKind.DONE) == 1, worker.output
    assert not await redis.exists(WORKER_KEY.format(worker_id=NAME))  # its heartbeat went with it
    assert await redis.zcard(c.QUEUE_GPU) == 0
    assert await used_today(pipeline) == 1


async def test_sigterm_past_the_drain_deadline_hands_the_job_back(
    pipeline: Pipeline, start: type[WorkerProcess]
) -> None:
    worker = start(IMAGEBOT_WORKER__DRAIN_S="0")
    redis = pipeline.runtime.redis
    await worker.serving(WorkerRegistry(redis))
    request_id = (await pipeline.runtime.service.imagine(LONG, ALICE)).request_id
    await first(pipeline, request_id, EventKind.STARTED)
    worker.process.send_signal(signal.SIGTERM)
    assert await worker.exit_code(within_s=60) == 0, worker.output
    assert "handed back to the queue" in worker.output
    # back in the queue at once, for any worker: no lease to wait for, no heartbeat left behind
    assert await redis.zscore(c.QUEUE_GPU, request_id) is not None
    assert not await redis.exists(in_progress_key_prefix + request_id)
    assert not await redis.exists(WORKER_KEY.format(worker_id=NAME))
    assert not [event for event in await events_of(pipeline, request_id) if event.terminal]

    await standby(pipeline)
    done = await first(pipeline, request_id, EventKind.DONE)
    assert len(done.images) == 1
    assert await used_today(pipeline) == 1  # charged once
    started = [event for event in await events_of(pipeline, request_id) if event.kind is EventKind.STARTED]
    assert [event.message for event in started] == [None, None]  # handing back used up no try


async def test_a_killed_workers_job_is_retried_within_a_lease_and_says_so(
    pipeline: Pipeline, start: type[WorkerProcess]
) -> None:
    worker = start()
    redis = pipeline.runtime.redis
    await worker.serving(WorkerRegistry(redis))
    request_id = (await pipeline.runtime.service.imagine(LONG, ALICE)).request_id
    await first(pipeline, request_id, EventKind.STARTED)
    lease = in_progress_key_prefix + request_id
    # three heartbeats, not arq's job timeout + 10 s (255 s by default)
    assert 0 < await redis.pttl(lease) <= 3000
    worker.process.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    async with asyncio.timeout(60):
        while True:
            if not await redis.exists(lease):
                break
            await asyncio.sleep(0.05)
    waited = time.monotonic() - killed
    print(f"a killed worker's job could be taken again after {waited:.1f} s")
    assert waited <= 3 + 2  # one lease (and a little for a loaded machine)
    assert await redis.zscore(c.QUEUE_GPU, request_id) is not None
    assert not [event for event in await events_of(pipeline, request_id) if event.terminal], (
        "rendered too fast"
    )

    await standby(pipeline)
    done = await first(pipeline, request_id, EventKind.DONE)
    assert len(done.images) == 1
    assert await used_today(pipeline) == 1
    started = [event for event in await events_of(pipeline, request_id) if event.kind is EventKind.STARTED]
    assert [event.message for event in started] == [
        None,
        RETRY_MESSAGE,
    ]  # the bots show this instead of "18%"


async def test_a_worker_process_serves_health_readiness_and_metrics(
    pipeline: Pipeline, start: type[WorkerProcess]
) -> None:
    import aiohttp

    from cli.redis_server import _free_port

    port = _free_port()
    worker = start(IMAGEBOT_OPS__HEALTH_PORT=str(port))
    base = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as session:
        async with asyncio.timeout(
            120
        ):  # alive first; ready once its model is loaded and it announced itself
            while True:
                assert worker.process.poll() is None, worker.output
                try:
                    async with session.get(f"{base}/readyz") as response:
                        if response.status == 200:
                            break
                        assert response.status == 503
                        assert "not serving yet" in await response.text()
                except aiohttp.ClientConnectionError:
                    pass
                await asyncio.sleep(0.1)
        async with session.get(f"{base}/healthz") as response:
            assert response.status == 200
        async with session.get(f"{base}/metrics") as response:
            assert response.status == 200 and "imagebot_jobs_total" in await response.text()
    worker.process.send_signal(signal.SIGTERM)
    assert await worker.exit_code(60) == 0


def children_of(pid: int) -> list[int]:
    """The processes whose parent is `pid` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
    return found


async def serving_ids(registry: WorkerRegistry) -> set[str]:
    return {worker.worker_id for worker in await registry.serving(c.QUEUE_GPU)}


async def two_serving(workers: WorkerProcess, registry: WorkerRegistry) -> list[int]:
    """Wait until the parent has two children and both named workers serve; returns the children's pids."""
    async with asyncio.timeout(180):
        while True:
            assert workers.process.poll() is None, workers.output
            children = children_of(workers.process.pid)
            if len(children) == 2 and {f"{NAME}-1", f"{NAME}-2"} <= await serving_ids(registry):
                return children
            await asyncio.sleep(0.1)


def running(pids: list[int]) -> bool:
    return any(Path(f"/proc/{pid}").exists() for pid in pids)


async def test_processes_run_side_by_side_and_stop_together(
    pipeline: Pipeline, start: type[WorkerProcess]
) -> None:
    """`imagebot worker --processes 2`: two named workers serve the queue, every job is done once, and one
    SIGTERM to the parent stops both (their heartbeats leave the worker list) with exit code 0."""
    workers = start("--processes", "2")
    registry = WorkerRegistry(pipeline.runtime.redis)
    children = await two_serving(workers, registry)
    users = [ALICE.model_copy(update={"user_id": f"user{i}"}) for i in range(4)]
    ids = [
        (await pipeline.runtime.service.imagine(f"a fox {i} --n 1", user)).request_id
        for i, user in enumerate(users)
    ]
    for request_id in ids:
        await first(pipeline, request_id, EventKind.DONE)
    workers.process.send_signal(signal.SIGTERM)
    assert await workers.exit_code(60) == 0, workers.output
    assert not {f"{NAME}-1", f"{NAME}-2"} & await serving_ids(registry)
    assert not await asyncio.to_thread(running, children)


async def test_a_child_that_dies_stops_the_others_and_the_parent_says_how(
    pipeline: Pipeline, start: type[WorkerProcess]
) -> None:
    workers = start("--processes", "2")
    first_child, second_child = await two_serving(workers, WorkerRegistry(pipeline.runtime.redis))
    os.kill(first_child, signal.SIGKILL)  # an OOM kill
    assert await workers.exit_code(60) == 128 + signal.SIGKILL, workers.output
    assert not await asyncio.to_thread(running, [second_child])  # the other was stopped, and reaped


async def test_a_parent_killed_outright_leaves_no_orphan_workers(
    pipeline: Pipeline, start: type[WorkerProcess]
) -> None:
    workers = start("--processes", "2")
    children = await two_serving(workers, WorkerRegistry(pipeline.runtime.redis))
    workers.process.kill()
    workers.process.wait()
    async with asyncio.timeout(60):  # each child hears SIGTERM from the kernel, drains and exits
        while await asyncio.to_thread(running, children):  # noqa: ASYNC110 (the process table has no event)
            await asyncio.sleep(0.1)


def test_a_count_below_one_is_refused_naming_the_option() -> None:
    command = [sys.executable, "-m", "cli", "worker", "--processes", "0"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 2
    assert "--processes: '0': give a whole number, 1 or more" in done.stderr
