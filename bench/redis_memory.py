"""Redis memory per finished job: MEMORY USAGE over every key a job leaves behind, and which keys they are.

    .venv/bin/python -m bench.redis_memory [--jobs 50] [--n 4]

An embedded Redis, the core service and an in-process worker on `tiny` (64×64, random weights). One warm-up job
creates what every job shares (the queue's duration lists, the fair clock, the streams' consumer group); then
`--jobs` jobs from as many users, each /imagine'd, rendered, delivered through the bots' consumer group (with
the delivered marker and the delivery log a bot writes) and finished. Memory is summed over every key (MEMORY
USAGE … SAMPLES 0, so streams and sets are counted exactly) before and after; the difference per job is printed,
with the keys grouped by their template in core.keys. Retention: every per-job key has a TTL (requests and
results: 30 days by default), and the streams are capped by length; the figures are what one job costs while
its data lives.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import tempfile
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("OMP_NUM_THREADS", "1")

from cli.redis_server import EmbeddedRedis
from cli.runtime import open_runtime
from core.delivery.delivery_log import DeliveryLog
from core.delivery.events import EventConsumer
from core.jobs.workers import WorkerRegistry
from core.keys import spec_for
from core.models.request import Platform, Requester
from core.models.result import ResultEvent
from core.settings import Settings


async def usage(redis: object) -> dict[str, int]:
    """Bytes per key, for every key in Redis."""
    sizes: dict[str, int] = {}
    async for raw in redis.scan_iter(count=1000):  # type: ignore[attr-defined]
        size = await redis.memory_usage(raw, samples=0)  # type: ignore[attr-defined]
        sizes[raw.decode()] = int(size or 0)
    return sizes


def template_of(key: str) -> str:
    spec = spec_for(key)
    return spec.template if spec is not None else key


async def run(jobs: int, n: int) -> None:
    with (
        tempfile.TemporaryDirectory() as folder,
        EmbeddedRedis(Path(folder) / "redis", protected=False) as server,
    ):
        root = Path(folder)
        settings = Settings(
            redis_url=server.url,
            data_dir=root / "data",
            storage={"backend": "local", "local_dir": root / "images"},  # type: ignore[arg-type]
            worker={"model_cache_dir": root / "models", "poll_delay_s": 0.02},  # type: ignore[arg-type]
            openai={"api_key": None},  # type: ignore[arg-type]
        )
        async with open_runtime(settings) as runtime:
            from worker.main import run_workers

            worker = asyncio.ensure_future(run_workers(settings, ["imagebot:queue:gpu"]))

            await WorkerRegistry(runtime.redis).wait_until_serving("imagebot:queue:gpu", 300, worker)
            consumer = EventConsumer(runtime.redis, Platform.TELEGRAM, "bench-1")
            deliveries = DeliveryLog(runtime.redis)
            finished: set[str] = set()

            async def post(event: ResultEvent) -> None:
                if event.terminal:
                    await deliveries.record(event.request_id, {"chat_id": "-100", "message_id": "7"})
                    finished.add(event.request_id)

            async def one(index: int) -> None:
                user = Requester(
                    platform=Platform.TELEGRAM, user_id=str(1000 + index), chat_id="-100", community_id="-100"
                )
                submission = await runtime.service.imagine(f"a lighthouse, study {index} --n {n}", user)
                async with asyncio.timeout(300):
                    while submission.request_id not in finished:
                        await consumer.read_once(post, block_ms=200)

            await one(0)  # warm-up: the shared keys
            await asyncio.sleep(0.5)
            before = await usage(runtime.redis)
            for index in range(1, jobs + 1):
                await one(index)
            await asyncio.sleep(0.5)
            after = await usage(runtime.redis)
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await worker

    grown: dict[str, int] = defaultdict(int)
    counts: dict[str, int] = defaultdict(int)
    for key, size in after.items():
        delta = size - before.get(key, 0)
        if delta:
            grown[template_of(key)] += delta
            counts[template_of(key)] += key not in before
    total = sum(grown.values())
    print(f"Redis memory per finished job ({jobs} jobs of {n} image(s) on tiny, each from its own user):")
    print(
        f"  {total / jobs:,.0f} bytes per job ({total / jobs / 1024:.1f} KiB); {total:,} bytes for {jobs} jobs"
    )
    print(f"  {'key template':58} {'new keys/job':>12} {'bytes/job':>10}")
    for template, size in sorted(grown.items(), key=lambda item: -item[1]):
        print(f"  {template:58} {counts[template] / jobs:12.2f} {size / jobs:10,.0f}")
    print(
        f"  (one million such jobs kept for their 30-day retention: about {total / jobs * 1e6 / 2**30:.1f} GiB)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=50)
    parser.add_argument("--n", type=int, default=4)
    args = parser.parse_args()
    asyncio.run(run(args.jobs, args.n))


if __name__ == "__main__":
    main()
