"""imagebot against the plain diffusers loop it wraps, side by side in one run, on the same work.

    .venv/bin/python -m bench.throughput [--jobs 12] [--n 4] [--burst 48] [--batch 8] [--processes 2]
        [--acks 500] [--model tiny|sd15|sdxl] [--size 512x512] [--steps 30]

Two workloads, each on the same requests in every column:
- `--jobs` jobs of `--n` images (default 12 × 4);
- a burst of `--burst` one-image requests (default 48 × 1), what micro-batching is for.
(a) plain loop: diffusers alone — load the pipeline, render each job (one seeded generator per image), save PNGs;
    torch with its default threads; (a') the same with the worker's model threads (worker/threads.py), when they
    differ; for the burst, (a8) the plain loop with `--batch` prompts per call: the most batching could give.
(b) imagebot end to end, batching off: embedded Redis, the core service (grammar, moderation, quotas, fair queue),
    an in-process worker (model, image check, watermark, C2PA signing, PNG/grid/preview, storage), result events.
    (b2), on a CPU worker: the same with the model and post-processing taking turns on every core instead of
    splitting them (WorkerSettings.cpu_turns on); (b3), on a CPU: `imagebot worker --processes N` (`--processes`,
    default 2) instead of the in-process worker, a worker process per core.
(c) the same with micro-batching on (`--batch` images per call; the worker holds 2 × `--batch` jobs, so the next
    batch gathers while the last one is checked and stored).
Prints images/s for each and the ratios b/a, c/a, c/b, per-stage p50/p95 of (b) and (c), the acknowledgement
latency p50/p99 of 500 concurrent submissions, and the answer time of a cache hit (these two on tiny: they time
the service, not the model). Same model, size and steps everywhere: tiny (64×64, 2 steps) by default; `--model sd15`
or `sdxl` renders with the real-size architecture built from its config with random weights (bench/architecture.py:
real compute, no download), on the worker's device and dtype (a GPU when there is one, float16 there) in every
column. Run it on a quiet machine: the figures are only comparable within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

from bench.architecture import Architecture, add_arguments, from_arguments
from bench.pipeline import _collect
from cli.runtime import open_runtime
from core import constants as c
from core.delivery.events import latest_id
from core.jobs.workers import WorkerInfo, WorkerRegistry
from core.models.request import Platform, Requester
from core.models.result import EventKind
from core.settings import Settings, updated

PROMPT = "a lighthouse at dusk, study {i}"


def plain_loop(arch: Architecture, jobs: int, n: int, out: Path, threads: int, per_call: int = 1) -> float:
    """Images per second of diffusers alone doing the same work: render and save each image. With `per_call`
    > 1 (one-image jobs only), that many jobs' prompts share each call: what batching could reach at best."""
    import torch
    from diffusers import DiffusionPipeline

    from worker.device import detect_device, generator_device, pick_dtype, torch_dtype

    torch.set_num_threads(threads)  # torch's default, whatever an earlier worker in this process set

    spec = arch.spec
    worker = Settings().worker  # the device and dtype the worker picks, so both columns compute alike
    device = detect_device(worker)
    pipe = DiffusionPipeline.from_pretrained(
        arch.folder, dtype=torch_dtype(pick_dtype(worker.dtype, device, spec.family))
    ).to(device)
    pipe.set_progress_bar_config(disable=True)

    def render(numbers: range) -> None:
        """Jobs `numbers` in one call: each its own prompt, n images, one seeded generator per image."""
        images = pipe(
            [PROMPT.format(i=i) for i in numbers],
            num_images_per_prompt=n,
            generator=[
                torch.Generator(generator_device(device)).manual_seed(1000 * i + k)
                for i in numbers
                for k in range(n)
            ],
            num_inference_steps=arch.steps,
            guidance_scale=spec.default_guidance,
            width=arch.width,
            height=arch.height,
        ).images
        names = [f"{i}-{k}.png" for i in numbers for k in range(n)]
        for name, image in zip(names, images, strict=True):
            image.save(out / name)

    render(range(-1, 0))  # warm-up, as (b) has
    started = time.perf_counter()
    for first in range(0, jobs, per_call):
        render(range(first, min(first + per_call, jobs)))
    return jobs * n / (time.perf_counter() - started)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def end_to_end(
    settings: Settings, jobs: int, n: int, flags: str = "", processes: int = 0
) -> tuple[float, dict[str, list[float]]]:
    """imagebot end to end: an in-process worker, or `processes` worker processes (`imagebot worker`)."""
    from worker.main import run_workers

    async with open_runtime(settings) as runtime:
        if processes:
            parent = worker_processes(runtime.settings, processes)
            worker = asyncio.ensure_future(asyncio.to_thread(parent.wait))
        else:
            worker = asyncio.ensure_future(run_workers(runtime.settings, [c.QUEUE_GPU]))
        registry = WorkerRegistry(runtime.redis)
        async with asyncio.timeout(600):
            while len(await registry.serving(c.QUEUE_GPU)) < max(1, processes):
                await registry.wait_until_serving(c.QUEUE_GPU, 600, worker)
                await asyncio.sleep(0.1)
        requester = Requester(platform=Platform.CLI, user_id="bench", chat_id="bench")
        await runtime.service.admission.quotas.set_tier("cli:bench", "unlimited")
        warm = [
            (await runtime.service.imagine(f"warm up {k} --n {n}{flags}", requester)).request_id
            for k in range(2 * max(1, processes))  # every worker's first job is behind us
        ]
        await _collect(runtime.redis, set(warm), "0-0")
        after = await latest_id(runtime.redis, Platform.CLI)
        started = time.perf_counter()
        wanted = {
            (await runtime.service.imagine(f"{PROMPT.format(i=i)} --n {n}{flags}", requester)).request_id
            for i in range(jobs)
        }
        events, received = await _collect(runtime.redis, wanted, after)
        rate = sum(len(e.images) for e in events if e.kind is EventKind.DONE) / (
            time.perf_counter() - started
        )
        if processes:
            parent.terminate()  # SIGTERM to every child: the queue is empty, so they leave at once
        else:
            worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)
    done = [e for e in events if e.kind is EventKind.DONE]
    stages = {
        "queue wait": [e.timings["queued"] for e in done],
        "model": [e.timings["model"] for e in done],
        "store": [e.timings["store"] for e in done],
        "delivery": [received[e.request_id] - e.created_at for e in done],
    }
    return rate, stages


def worker_processes(settings: Settings, count: int) -> subprocess.Popen[bytes]:
    """`imagebot worker --processes count` on the gpu queue with these settings (cli/processes.py: each child on
    cores ÷ count model threads and one post-processing thread): on a CPU, the other way to use every core."""
    environment = {
        **os.environ,
        "IMAGEBOT_REDIS_URL": str(settings.redis_url),
        "IMAGEBOT_DATA_DIR": str(settings.data_dir),
        "IMAGEBOT_DEFAULT_MODEL": settings.default_model,
        "IMAGEBOT_STORAGE": settings.storage.model_dump_json(),
        "IMAGEBOT_WORKER": updated(settings.worker, {"drain_s": 1}).model_dump_json(),
    }
    command = [sys.executable, "-m", "cli", "worker", "--queue", "gpu", "--processes", str(count)]
    return subprocess.Popen(command, env=environment, stderr=subprocess.DEVNULL)


async def acknowledgements(settings: Settings, count: int) -> list[float]:
    """Seconds from each of `count` concurrent /imagine submissions (distinct users) to its queue position and
    wait estimate."""
    async with open_runtime(settings) as runtime:
        # a live worker that takes nothing: routing accepts the jobs and they stay queued
        await WorkerRegistry(runtime.redis).beat(WorkerInfo("bench", c.QUEUE_GPU, ("tiny",), 0.0))
        # as after any finished job, the queue knows how long work takes: every answer carries a wait estimate
        queue = runtime.service.queue
        first = await runtime.service.imagine(
            "a first job --n 1", Requester(platform=Platform.CLI, user_id="first", chat_id="first")
        )
        await queue.record_duration(c.QUEUE_GPU, 1.0, await queue.load(first.request_id))

        async def submit(i: int) -> float:
            requester = Requester(platform=Platform.CLI, user_id=f"user{i}", chat_id=f"chat{i}")
            start = time.perf_counter()
            submission = await runtime.service.imagine(f"{PROMPT.format(i=i)} --n 1", requester)
            elapsed = time.perf_counter() - start
            assert submission.position is not None and submission.eta_s is not None, submission
            return elapsed

        return list(await asyncio.gather(*(submit(i) for i in range(count))))


async def cache_hit(settings: Settings) -> float:
    from worker.main import run_workers

    async with open_runtime(settings) as runtime:
        worker = asyncio.ensure_future(run_workers(runtime.settings, [c.QUEUE_GPU]))
        await WorkerRegistry(runtime.redis).wait_until_serving(c.QUEUE_GPU, 600, worker)
        requester = Requester(platform=Platform.CLI, user_id="bench", chat_id="bench")
        first = await runtime.service.imagine("a red fox --seed 7 --n 1", requester)
        await _collect(runtime.redis, {first.request_id}, "0-0")
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)
        start = time.perf_counter()
        again = await runtime.service.imagine("a red fox --seed 7 --n 1", requester)
        elapsed = time.perf_counter() - start
        assert again.cached, "the second identical request was not served from the cache"
        return elapsed


def settings_for(folder: Path, cache_dir: Path, arch: Architecture | None = None, **worker: Any) -> Settings:
    chosen = arch.settings() if arch else {"worker": {}}
    return Settings(
        data_dir=folder,
        storage={"local_dir": folder / "storage"},
        **{
            **chosen,
            "worker": {"model_cache_dir": cache_dir, "poll_delay_s": 0.05, **chosen["worker"], **worker},
        },
    )


def print_stages(stages: dict[str, list[float]]) -> None:
    for name, values in stages.items():
        p50, p95 = statistics.median(values), percentile(values, 0.95)
        print(f"      {name:<12} p50 {1000 * p50:8.1f} ms   p95 {1000 * p95:8.1f} ms")


def workload(
    title: str, folder: Path, args: argparse.Namespace, jobs: int, n: int, threads: int, arch: Architecture
) -> None:
    """(a), (b) and (c) on `jobs` jobs of `n` images, printed side by side."""
    from worker.device import detect_device
    from worker.threads import plan_threads, usable_cores

    (folder / "plain").mkdir(parents=True)
    plain = plain_loop(arch, jobs, n, folder / "plain", threads)
    device = detect_device(Settings().worker)
    plan = plan_threads(Settings().worker, device, usable_cores())
    limited = plain_loop(arch, jobs, n, folder / "plain", plan.model) if plan.model != threads else plain
    off, off_stages = asyncio.run(
        end_to_end(settings_for(folder / "b", args.model_cache, arch), jobs, n, arch.flags)
    )
    turns = None
    if device == "cpu" and not plan.turns:  # the other way to share a CPU worker's cores
        turns, _ = asyncio.run(
            end_to_end(
                settings_for(folder / "b2", args.model_cache, arch, cpu_turns=True), jobs, n, arch.flags
            )
        )
    batched = settings_for(
        folder / "c", args.model_cache, arch, batch_max_images=args.batch, max_jobs=2 * args.batch
    )
    on, on_stages = asyncio.run(end_to_end(batched, jobs, n, arch.flags))
    apart = None
    if device == "cpu" and args.processes:  # a worker process per core instead of one splitting the cores
        apart, _ = asyncio.run(
            end_to_end(
                settings_for(folder / "b3", args.model_cache, arch), jobs, n, arch.flags, args.processes
            )
        )
    ceiling = None
    if n == 1 and args.batch > 1:
        ceiling = plain_loop(arch, jobs, n, folder / "plain", threads, per_call=args.batch)
    print(f"{title}: {jobs} jobs × {n} image(s), {arch.describe()}")
    print(f"  (a) plain diffusers loop        : {plain:6.3g} images/s   (torch's default {threads} threads)")
    if plan.model != threads:
        print(
            f"  (a') the same, {plan.model} torch thread(s) : {limited:6.3g} images/s   (the worker's model threads)"
        )
    if ceiling is not None:
        print(
            f"  (a{args.batch}) plain loop, {args.batch} prompts a call : {ceiling:6.3g} images/s   "
            f"a{args.batch}/a = {ceiling / plain:.2f}   (the most batching could give)"
        )
    print(
        f"  (b) imagebot, batching off      : {off:6.3g} images/s   b/a = {off / plain:.2f}   "
        + (f"b/a' = {off / limited:.2f}" if plan.model != threads else "")
    )
    print_stages(off_stages)
    if turns is not None:
        print(
            f"  (b2) the same, cores in turns   : {turns:6.3g} images/s   b2/a = {turns / plain:.2f}   "
            "(cpu_turns on: model and post-processing take turns on every core)"
        )
    if apart is not None:
        print(
            f"  (b3) {args.processes} worker processes        : {apart:6.3g} images/s   b3/a = {apart / plain:.2f}   "
            f"(imagebot worker --processes {args.processes})"
        )
    print(
        f"  (c) imagebot, batching on ({args.batch:>2}) : {on:6.3g} images/s   c/a = {on / plain:.2f}   "
        f"c/b = {on / off:.2f}"
    )
    print_stages(on_stages)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--jobs", type=int, default=12, help="jobs of --n images in the grids workload (0: skip)"
    )
    parser.add_argument("--n", type=int, default=4, choices=(1, 2, 3, 4))
    parser.add_argument("--burst", type=int, default=48, help="one-image requests in the burst (0: skip)")
    parser.add_argument("--batch", type=int, default=8, help="images per call in (c)")
    parser.add_argument("--acks", type=int, default=500)
    parser.add_argument(
        "--processes", type=int, default=2, help="CPU only: (b3) with this many worker processes (0: skip)"
    )
    add_arguments(parser)  # --model, --size, --steps, --model-cache
    args = parser.parse_args()
    arch = from_arguments(args)
    import torch

    from worker.device import detect_device
    from worker.threads import plan_threads, usable_cores

    threads = torch.get_num_threads()
    device = detect_device(Settings().worker)
    plan = plan_threads(Settings().worker, device, usable_cores())
    gpu = f"{torch.cuda.get_device_name()}, " if device == "cuda" else ""
    print(
        f"{device.upper()}, {gpu}{plan.describe()} in imagebot's worker; "
        f"the plain loop uses torch's default {threads}"
    )
    with tempfile.TemporaryDirectory(prefix="imagebot-bench-") as tmp:
        folder = Path(tmp)
        if args.jobs:
            workload("grids", folder / "grids", args, args.jobs, args.n, threads, arch)
        if args.burst:
            workload("burst", folder / "burst", args, args.burst, 1, threads, arch)
        acks = asyncio.run(acknowledgements(settings_for(folder / "acks", args.model_cache), args.acks))
        hit = asyncio.run(cache_hit(settings_for(folder / "hit", args.model_cache)))
    print(
        f"{len(acks)} concurrent submissions acknowledged: p50 {1000 * statistics.median(acks):.0f} ms, "
        f"p99 {1000 * percentile(acks, 0.99):.0f} ms"
    )
    print(f"cache hit answered in {1000 * hit:.1f} ms")


if __name__ == "__main__":
    main()
