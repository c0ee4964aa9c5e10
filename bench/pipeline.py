"""How much of a job's wall time is spent outside the model call, for a burst of jobs on the tiny model (CPU).

Runs the real path in one process: embedded Redis, the core service, an in-process arq worker on `tiny`,
local storage, result events. Prints plain lines:

  device busy share   Σ model-call time / burst wall time (the model runs one call at a time)
  outside share       1 − device busy share: queue dispatch, source load, checks, encode, upload, events
  per-job medians     queued, model, store, event delivery, and worker-side time outside the model call

Usage: python bench/pipeline.py [--jobs 50] [--n 4] [--max-jobs 2] [--no-image-check]
           [--model tiny|sd15|sdxl] [--size 512x512] [--steps 30]

`--model sd15|sdxl` renders with the real-size architecture with random weights (bench/architecture.py).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

from arq.connections import ArqRedis

from bench.architecture import Architecture, add_arguments, from_arguments
from cli.runtime import open_runtime
from core.delivery.events import follow, latest_id
from core.jobs.workers import WorkerRegistry
from core.models.request import Platform, Requester
from core.models.result import EventKind, ResultEvent
from core.settings import Settings


async def burst(
    jobs: int, n: int, max_jobs: int, image_check: bool, cache_dir: Path, arch: Architecture
) -> float:
    """Run one burst and print its figures; returns the outside share."""
    from worker.main import run_workers

    with tempfile.TemporaryDirectory(prefix="imagebot-bench-") as tmp:
        chosen = arch.settings()
        settings = Settings(
            data_dir=Path(tmp),
            storage={"local_dir": Path(tmp) / "storage"},  # type: ignore[arg-type]
            default_model=chosen["default_model"],
            worker={
                "model_cache_dir": cache_dir,
                "max_jobs": max_jobs,
                "poll_delay_s": 0.05,
                **chosen["worker"],
            },
            moderation={"image_check": image_check},  # type: ignore[arg-type]
            limits={"default_images": n},  # type: ignore[arg-type]
        )
        async with open_runtime(settings) as runtime:
            worker = asyncio.ensure_future(run_workers(runtime.settings, ["imagebot:queue:gpu"]))
            registry = WorkerRegistry(runtime.redis)
            load_started = time.monotonic()
            await registry.wait_until_serving("imagebot:queue:gpu", 600, worker)
            print(f"worker ready (model load) : {time.monotonic() - load_started:.2f} s")
            requester = Requester(platform=Platform.CLI, user_id="bench", chat_id="bench")
            # quotas stay on (their reservation is part of the path), but one user must be allowed a burst
            await runtime.service.admission.quotas.set_tier("cli:bench", "unlimited")
            # one warm-up job so first-call costs (allocator, kernels) are not counted
            warm = await runtime.service.imagine(f"warm up{arch.flags}", requester)
            await _collect(runtime.redis, {warm.request_id}, "0-0")
            last_id = await latest_id(runtime.redis, Platform.CLI)

            started = time.monotonic()
            submitted = set()
            for i in range(jobs):
                submission = await runtime.service.imagine(
                    f"a lighthouse at dusk, study {i}{arch.flags}", requester
                )
                submitted.add(submission.request_id)
            submit_s = time.monotonic() - started
            events, received = await _collect(runtime.redis, submitted, last_id)
            wall = time.monotonic() - started
            worker.cancel()
            await asyncio.gather(worker, return_exceptions=True)

    done = [event for event in events if event.kind is EventKind.DONE]
    model = [event.timings["model"] for event in done]
    store = [event.timings["store"] for event in done]
    queued = [event.timings["queued"] for event in done]
    outside_worker = [(event.duration_s or 0) - event.timings["model"] for event in done]
    delivery = [received[event.request_id] - event.created_at for event in done]
    busy = sum(model) / wall
    print(
        f"jobs                      : {len(done)}/{jobs} done, {n} image(s) each, {arch.describe()}, "
        f"max_jobs {max_jobs}"
    )
    print(f"submit {jobs} jobs          : {submit_s:.3f} s ({1000 * submit_s / jobs:.1f} ms each)")
    print(f"burst wall time           : {wall:.2f} s ({jobs / wall:.1f} jobs/s)")
    print(f"sum of model-call time    : {sum(model):.2f} s")
    print(f"device busy share         : {100 * busy:.1f} %")
    print(
        f"outside share             : {100 * (1 - busy):.1f} %  (queue, load, checks, encode, upload, events)"
    )
    print(f"per job, median model     : {1000 * statistics.median(model):.1f} ms")
    print(
        f"per job, median store     : {1000 * statistics.median(store):.1f} ms  (image check, PNG/JPEG, upload)"
    )
    print(
        f"per job, worker outside   : {1000 * statistics.median(outside_worker):.1f} ms  (job time − model call)"
    )
    waits = [event.timings.get("device_wait", 0.0) for event in done]
    print(
        f"per job, median dev. wait : {1000 * statistics.median(waits):.1f} ms  (behind the other job's model call)"
    )
    print(f"per job, median queued    : {statistics.median(queued):.2f} s  (waiting behind the burst)")
    print(f"per job, event delivery   : {1000 * statistics.median(delivery):.1f} ms  (publish → read)")
    return 1 - busy


async def _collect(
    redis: ArqRedis, wanted: set[str], after: str
) -> tuple[list[ResultEvent], dict[str, float]]:
    """The terminal events of `wanted`, and when each was read."""
    events: list[ResultEvent] = []
    received: dict[str, float] = {}
    pending = set(wanted)
    async for event in follow(redis, Platform.CLI, after, block_ms=1000):
        if event.request_id in pending and event.terminal:
            received[event.request_id] = time.time()
            pending.discard(event.request_id)
            events.append(event)
            if not pending:
                break
    return events, received


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=50)
    parser.add_argument("--n", type=int, default=4, choices=(1, 2, 3, 4))
    parser.add_argument(
        "--max-jobs",
        type=int,
        nargs="+",
        default=[1, 2],
        help="one burst per value, side by side in this run",
    )
    parser.add_argument("--no-image-check", action="store_true")
    add_arguments(parser)  # --model, --size, --steps, --model-cache
    args = parser.parse_args()
    arch = from_arguments(args)
    shares = {}
    for max_jobs in args.max_jobs:
        print(f"--- burst with max_jobs {max_jobs}")
        shares[max_jobs] = asyncio.run(
            burst(args.jobs, args.n, max_jobs, not args.no_image_check, args.model_cache, arch)
        )
    if len(shares) > 1:
        print(
            "--- outside share, side by side: "
            + ", ".join(f"max_jobs {key}: {100 * value:.1f} %" for key, value in shares.items())
        )


if __name__ == "__main__":
    main()
