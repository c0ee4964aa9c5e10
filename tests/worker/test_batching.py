"""Micro-batching on the worker: same seed, same bytes, batched or not (on a CPU: worker/invariance.py); only
compatible requests share a call; a failing batch fails nobody; a cancelled request leaves the line. On the real
tiny pipeline where pixels matter."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.errors import GenerationFailed
from core.models.request import ControlRef, GenerationRequest, LoraRef, Mode
from core.settings import WorkerSettings, updated
from worker.batching import Batcher, batch_key
from worker.device import DeviceGuard, Interruption
from worker.diffusers_backend import DiffusersBackend
from worker.invariance import active as invariance_active
from worker.invariance import describe as accelerate_words
from worker.postprocess import encode_png
from worker.registry import ModelRegistry
from worker.threads import ThreadPlan, model_executor

RequestFactory = Callable[..., GenerationRequest]


def batching_backend(
    registry: ModelRegistry, model_cache_dir: Path, images: int = 8, invariant: bool = True
) -> DiffusersBackend:
    settings = WorkerSettings(
        model_cache_dir=model_cache_dir,
        device="cpu",
        batch_max_images=images,
        batch_window_s=0.2,
        batch_invariant=invariant,
    )
    return DiffusersBackend(registry, settings=settings)


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


def png(image: Image.Image) -> bytes:
    return encode_png(image, {"software": "imagebot"})


# Batches of 2, 4 and 8 images: mixed prompts, a negative prompt, several seeds per request, a seed above 2**32.
BATCHES = {
    2: (("a", "a red fox", "", (7,)), ("c", "a cat", "blurry", (3,))),
    4: (
        ("a", "a red fox", "", (7,)),
        ("b", "a lighthouse at dusk", "", (11, 12)),
        ("c", "a cat", "blurry", (3,)),
    ),
    8: (
        ("a", "a red fox", "", (7,)),
        ("b", "a lighthouse at dusk", "", (11, 12)),
        ("c", "a cat", "blurry", (3,)),
        ("d", "a red fox", "", (8, 9, 10, 2**40)),
    ),
}


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("images", sorted(BATCHES))
async def test_batched_images_have_the_bytes_of_each_image_rendered_alone(
    tiny_registry: ModelRegistry,
    model_cache_dir: Path,
    make_request: RequestFactory,
    images: int,
    threads: int,
) -> None:
    """Same seed, same bytes, batched or not (worker/invariance.py, on by default on a CPU): each image of a
    batch is byte for byte the image its seed gives in a request of its own, at 1 and 2 torch threads."""
    plan = ThreadPlan(cores=threads, model=threads, post=1)
    requests = [
        make_request(request_id=name, prompt=prompt, negative_prompt=negative, seeds=seeds)
        for name, prompt, negative, seeds in BATCHES[images]
    ]
    settings = WorkerSettings(
        model_cache_dir=model_cache_dir, device="cpu", batch_max_images=images, batch_window_s=0.2
    )
    device_threads = [model_executor(plan), model_executor(plan)]  # the worker's device thread, twice
    batched = DiffusersBackend(tiny_registry, settings=settings, executor=device_threads[0])
    together = await asyncio.gather(*(batched.generate(r, None) for r in requests))
    assert batched.batcher.calls == 1  # all of them shared one pipeline call
    assert sum(len(g.images) for g in together) == images

    # the same worker, each request alone (invariance is on where the model is micro-batched)
    alone = DiffusersBackend(
        tiny_registry, settings=updated(settings, {"batch_window_s": 0.0}), executor=device_threads[1]
    )
    for request, generation in zip(requests, together, strict=True):
        assert [g.seed for g in generation.images] == list(request.seeds)
        for image in generation.images:
            single = await alone.generate(request.model_copy(update={"seeds": (image.seed,)}), None)
            assert png(image.image) == png(single.images[0].image), (request.request_id, image.seed)
    for executor in device_threads:
        executor.shutdown()


async def test_without_batch_invariance_the_same_seeds_still_draw_the_same_pictures(
    tiny_registry: ModelRegistry, model_cache_dir: Path, make_request: RequestFactory
) -> None:
    """With the switch off the kernels see other shapes in a batch, and a value lying on a rounding edge may
    land one step of 8-bit colour away: measured 0–2 values of 12 288 per image, never more than one step."""
    requests = [
        make_request(request_id=name, prompt=prompt, negative_prompt=negative, seeds=seeds)
        for name, prompt, negative, seeds in BATCHES[8]
    ]
    batched = batching_backend(tiny_registry, model_cache_dir, invariant=False)
    together = await asyncio.gather(*(batched.generate(r, None) for r in requests))
    assert batched.batcher.calls == 1
    alone = DiffusersBackend(tiny_registry, settings=updated(batched.settings, {"batch_max_images": 1}))
    for request, generation in zip(requests, together, strict=True):
        single = await alone.generate(request, None)
        for mine, theirs in zip(generation.images, single.images, strict=True):
            difference = np.abs(pixels(mine.image) - pixels(theirs.image))
            assert difference.max() <= 1
            assert np.count_nonzero(difference) <= difference.size // 1000


def test_batch_invariance_is_reported_at_start_up_and_only_on_a_cpu_that_batches() -> None:
    cpu = WorkerSettings(device="cpu", batch_max_images=8)
    assert accelerate_words(cpu, "cpu") == "batch-invariant kernels"
    assert accelerate_words(updated(cpu, {"batch_max_images": 1}), "cpu") is None  # nothing shares a call
    only_tiny = updated(cpu, {"batch_max_images": 1, "batch_max_images_per_model": {"tiny": 4}})
    assert accelerate_words(only_tiny, "cpu") == "batch-invariant kernels"
    assert invariance_active(only_tiny, "cpu", "tiny") and not invariance_active(only_tiny, "cpu", "sd15")
    assert accelerate_words(cpu, "cuda") == "batch invariance off (it is for CPU workers, not cuda)"
    assert accelerate_words(updated(cpu, {"compile": True}), "cpu") == (
        "batch invariance off (torch.compile is on)"
    )
    assert accelerate_words(updated(cpu, {"batch_invariant": False}), "cpu") is None


async def test_a_batch_of_one_request_is_byte_identical_to_it_alone(
    tiny_registry: ModelRegistry, model_cache_dir: Path, make_request: RequestFactory
) -> None:
    """Where the shapes match, so do the bytes: the batching path itself adds nothing to the pixels (the same
    kernels on both sides: batch invariance off, as it is for a worker that does not batch)."""
    request = make_request(prompt="a red fox", seeds=(7, 8))
    batched = await batching_backend(tiny_registry, model_cache_dir, invariant=False).generate(request, None)
    single = await DiffusersBackend(tiny_registry).generate(request, None)
    assert [png(g.image) for g in batched.images] == [png(g.image) for g in single.images]


def test_only_text_to_image_requests_with_the_same_settings_share_a_key(make_request: RequestFactory) -> None:
    base = make_request()
    assert batch_key(base) == batch_key(make_request(prompt="another", negative_prompt="x", seeds=(5, 6)))
    for different in (
        make_request(width=128),
        make_request(steps=3),
        make_request(guidance=7.5),
        make_request(sampler="euler a"),
        make_request(loras=(LoraRef(name="ink", weight=0.8),)),
        make_request(model="tiny-xl"),
    ):
        assert batch_key(different) != batch_key(base)
    assert batch_key(make_request(loras=(LoraRef(name="ink", weight=0.5),))) != batch_key(
        make_request(loras=(LoraRef(name="ink", weight=0.8),))
    )
    assert batch_key(make_request(control=ControlRef(kind="canny", image="k"))) is None
    assert batch_key(make_request(mode=Mode.IMG2IMG, source_image="k", strength=0.5)) is None


async def test_incompatible_requests_are_rendered_in_separate_calls(
    tiny_registry: ModelRegistry, model_cache_dir: Path, make_request: RequestFactory
) -> None:
    backend = batching_backend(tiny_registry, model_cache_dir)
    small = [make_request(request_id=f"s{i}", seeds=(i,)) for i in range(3)]
    wide = make_request(request_id="w", width=128, seeds=(1,))
    results = await asyncio.gather(*(backend.generate(r, None) for r in [small[0], wide, *small[1:]]))
    assert backend.batcher.calls == 2
    assert [g.image.size for g in results[1].images] == [(128, 64)]
    assert all(g.image.size == (64, 64) for r in results[:1] + results[2:] for g in r.images)


async def test_a_batch_takes_no_more_images_than_the_model_allows(
    tiny_registry: ModelRegistry, model_cache_dir: Path, make_request: RequestFactory
) -> None:
    backend = batching_backend(tiny_registry, model_cache_dir, images=3)
    requests = [make_request(request_id=f"r{i}", seeds=(i, i + 100)) for i in range(3)]  # 2 images each
    await asyncio.gather(*(backend.generate(r, None) for r in requests))
    assert backend.batcher.calls == 3  # 2 + 2 > 3: every call holds one request


class PoisonedPipeline:
    """Renders solid images, one per seed; any call holding the poisoned request fails."""

    def __init__(self, poison: str) -> None:
        self.poison = poison
        self.calls: list[tuple[str, ...]] = []

    def call_for(
        self, requests: tuple[GenerationRequest, ...], on_progress: Callable[[int, int], None]
    ) -> Callable[[Interruption], tuple[list[Image.Image], float]]:
        def call(interruption: Interruption) -> tuple[list[Image.Image], float]:
            self.calls.append(tuple(r.request_id for r in requests))
            on_progress(1, 1)
            if any(r.request_id == self.poison for r in requests):
                raise GenerationFailed("the model failed")
            return [Image.new("RGB", (8, 8), (seed % 256, 0, 0)) for r in requests for seed in r.seeds], 0.01

        return call


async def test_a_failing_batch_fails_only_the_request_that_fails_alone(make_request: RequestFactory) -> None:
    pipeline = PoisonedPipeline(poison="bad")
    batcher = Batcher(DeviceGuard(), pipeline.call_for, lambda model: 8, None, window_s=0.1)
    requests = [
        make_request(request_id=name, seeds=(seed,)) for name, seed in (("a", 1), ("bad", 2), ("c", 3))
    ]
    steps: list[str] = []

    def progress(name: str) -> Callable[[int, int], None]:
        return lambda step, total: steps.append(name)

    outcomes = await asyncio.gather(
        *(batcher.render(r, progress(r.request_id)) for r in requests), return_exceptions=True
    )

    assert pipeline.calls[0] == ("a", "bad", "c")  # together first, then each alone
    assert sorted(pipeline.calls[1:]) == [("a",), ("bad",), ("c",)]
    assert isinstance(outcomes[1], GenerationFailed)
    for outcome, seed in ((outcomes[0], 1), (outcomes[2], 3)):
        assert not isinstance(outcome, BaseException)
        assert outcome.images[0].getpixel((0, 0)) == (seed, 0, 0)
        assert outcome.batched_with == 1
    assert sorted(set(steps)) == ["a", "bad", "c"]  # each request heard of its progress


async def test_a_request_cancelled_while_waiting_leaves_the_line(make_request: RequestFactory) -> None:
    pipeline = PoisonedPipeline(poison="none")
    device = DeviceGuard()
    batcher = Batcher(device, pipeline.call_for, lambda model: 8, None)
    release = asyncio.Event()

    async def hold_device() -> None:
        await device.run(lambda _: asyncio.run_coroutine_threadsafe(release.wait(), loop).result())

    loop = asyncio.get_running_loop()
    holder = asyncio.ensure_future(hold_device())
    await asyncio.sleep(0.05)
    kept = asyncio.ensure_future(batcher.render(make_request(request_id="kept", seeds=(1,)), None))
    dropped = asyncio.ensure_future(batcher.render(make_request(request_id="dropped", seeds=(2,)), None))
    await asyncio.sleep(0.05)
    dropped.cancel()
    release.set()
    rendered = await kept
    await holder
    with pytest.raises(asyncio.CancelledError):
        await dropped
    assert pipeline.calls == [("kept",)]
    assert rendered.images[0].getpixel((0, 0)) == (1, 0, 0)
