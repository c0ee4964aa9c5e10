"""What batch invariance costs (worker/invariance.py): images per second of the tiny model, 8 images rendered
alone (8 calls) and batched (one call of 8), with the switch off and on, side by side in one run at one torch
thread (other processes share this machine: compare within a run, not across runs).

    OMP_NUM_THREADS=1 .venv/bin/python -m bench.batch_invariance [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from core.models.request import GenerationRequest, Requester
from core.settings import WorkerSettings, updated
from worker.diffusers_backend import DiffusersBackend
from worker.registry import ModelRegistry
from worker.threads import ThreadPlan, model_executor
from worker.tiny import ensure_tiny_model

PROMPTS = ("a red fox", "a lighthouse at dusk", "a cat", "a red fox", "a castle", "a dog", "a tree", "a boat")


def requests() -> list[GenerationRequest]:
    who = Requester(platform="cli", user_id="bench", chat_id="local")
    return [
        GenerationRequest(
            request_id=f"r{i}",
            prompt=p,
            width=64,
            height=64,
            steps=4,
            guidance=5.0,
            seeds=(i,),
            model="tiny",
            requester=who,
        )
        for i, p in enumerate(PROMPTS)
    ]


async def images_per_second(registry: ModelRegistry, invariant: bool, batched: bool) -> float:
    # a worker that micro-batches (the only kind the switch applies to); "alone" sends one request at a time
    settings = updated(
        registry.settings, {"batch_invariant": invariant, "batch_max_images": 8, "batch_window_s": 0.0}
    )
    executor = model_executor(ThreadPlan(cores=1, model=1, post=1))
    backend = DiffusersBackend(registry, settings=settings, executor=executor)
    work = requests()
    started = time.perf_counter()
    if batched:
        await asyncio.gather(*(backend.generate(r, None) for r in work))
        assert backend.batcher.calls == 1
    else:
        for request in work:
            await backend.generate(request, None)
    seconds = time.perf_counter() - started
    executor.shutdown()
    return len(work) / seconds


async def main(rounds: int) -> None:
    folder = Path(tempfile.mkdtemp(prefix="imagebot-bench-"))
    ensure_tiny_model(folder)
    registry = ModelRegistry(WorkerSettings(model_cache_dir=folder, device="cpu", dtype="float32"))
    registry.load("tiny")
    cases = [(invariant, batched) for invariant in (False, True) for batched in (False, True)]
    best = {case: 0.0 for case in cases}
    for _ in range(rounds):  # interleaved, so a burst of load elsewhere hits every column alike
        for case in cases:
            best[case] = max(best[case], await images_per_second(registry, *case))
    print(f"tiny model, 64x64, 4 steps, 8 images, 1 torch thread (best of {rounds} rounds)")
    print(f"{'batch_invariant':>16} {'alone x8 img/s':>15} {'batched x8 img/s':>17}")
    for invariant in (False, True):
        print(f"{invariant!s:>16} {best[(invariant, False)]:>15.1f} {best[(invariant, True)]:>17.1f}")
    registry.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    asyncio.run(main(parser.parse_args().rounds))
