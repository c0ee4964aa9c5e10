"""Queue positions and waits users are told, checked against the order and times a real arq worker delivers.

The workers here are real arq Workers on the real queue whose job stands in for a render: it holds one device
(a lock) for a time proportional to the request's pixel-steps, and reports its duration the way worker/jobs.py
does. Users submit through the service, as the bots do.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from arq import Worker
from arq.worker import func

from core import constants as c
from core.jobs.connection import dump_job, load_job, redis_settings
from core.jobs.estimate import request_units
from core.jobs.fairness import FairScheduler
from core.jobs.queue import JobQueue, Submission
from core.jobs.workers import WorkerInfo, WorkerRegistry
from core.models.request import Platform, Requester
from tests.pipeline_fixture import Pipeline


def user(number: int) -> Requester:
    return Requester(platform=Platform.TELEGRAM, user_id=str(1000 + number), chat_id=str(1000 + number))


@dataclass
class Device:
    """One GPU shared by a worker's jobs: each render takes `seconds_per_unit` per million pixel-steps."""

    seconds_per_unit: float = 0.0
    started: list[str] = field(default_factory=list)
    finished: dict[str, float] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def job(self, ctx: dict[str, Any], request_id: str) -> None:
        queue = JobQueue(ctx["redis"])
        await FairScheduler(ctx["redis"]).started(c.QUEUE_GPU, float(ctx["score"]))  # as worker/jobs.py does
        self.started.append(request_id)
        began = time.monotonic()
        request = await queue.load(request_id)
        async with self.lock:
            await asyncio.sleep(self.seconds_per_unit * request_units(request))
        await queue.record_duration(c.QUEUE_GPU, time.monotonic() - began, request)
        self.finished[request_id] = time.monotonic()

    async def drain(self, pipeline: Pipeline, max_jobs: int, one: bool = False) -> None:
        """Run a burst worker until the queue is empty (or, with `one` and max_jobs 1, one job is done)."""
        worker = Worker(
            functions=[func(self.job, name=c.JOB_GENERATE)],
            queue_name=c.QUEUE_GPU,
            redis_settings=redis_settings(pipeline.settings.redis_url or ""),
            job_serializer=dump_job,
            job_deserializer=load_job,
            burst=True,
            max_burst_jobs=1 if one else -1,
            max_jobs=max_jobs,
            poll_delay=0.005,
            handle_signals=False,
        )
        try:
            await worker.main()
        finally:
            await worker.close()


async def announce(pipeline: Pipeline, max_jobs: int) -> None:
    info = WorkerInfo("device", c.QUEUE_GPU, ("tiny",), 0.0, max_jobs=max_jobs)
    await WorkerRegistry(pipeline.runtime.redis).beat(info)


async def submit_all(pipeline: Pipeline, users: range, text: str = "a fox --n 1") -> list[Submission]:
    """Everyone in `users` sends one /imagine in the same moment; each is answered before the next is read
    (as a bot taking one batch of updates does)."""
    service = pipeline.runtime.service
    return [await service.imagine(text, user(number)) for number in users]


async def test_a_hundred_users_at_once_are_each_told_their_true_place(pipeline: Pipeline) -> None:
    await announce(pipeline, max_jobs=1)
    told = await submit_all(pipeline, range(100))
    assert sorted(s.position or 0 for s in told) == list(range(1, 101))

    device = Device()
    await device.drain(pipeline, max_jobs=1)
    assert len(device.started) == 100
    for submission in told:
        assert device.started.index(submission.request_id) + 1 == submission.position


async def test_places_stay_true_when_workers_start_jobs_between_arrivals(pipeline: Pipeline) -> None:
    await announce(pipeline, max_jobs=1)
    early = await submit_all(pipeline, range(20))
    device = Device()
    for _ in range(7):  # the clock moves to the 7th job's score
        await device.drain(pipeline, max_jobs=1, one=True)
    assert len(device.started) == 7
    late = await submit_all(pipeline, range(20, 40))
    await device.drain(pipeline, max_jobs=1)
    for submission in early:
        assert device.started.index(submission.request_id) + 1 == submission.position
    for submission in late:
        assert device.started.index(submission.request_id) + 1 == 7 + (submission.position or 0)


async def test_the_wait_told_is_within_a_factor_of_two_of_the_real_one(pipeline: Pipeline) -> None:
    """The recent jobs were four times bigger than the ones now queued (the "about 2819 s" case): the estimate
    counts work, not jobs, so it still holds."""
    await announce(pipeline, max_jobs=2)
    device = Device(seconds_per_unit=8.0)  # a 64×64, 2-step image: 66 ms
    await submit_all(pipeline, range(100, 104), "a big fox --n 4")
    await device.drain(pipeline, max_jobs=2)

    told = await submit_all(pipeline, range(30))
    assert all(s.eta_s is not None for s in told)
    began = time.monotonic()
    await device.drain(pipeline, max_jobs=2)
    for submission in told:
        waited = device.finished[submission.request_id] - began
        assert submission.eta_s is not None
        assert 0.5 <= submission.eta_s / waited <= 2.0, (submission.position, submission.eta_s, waited)
