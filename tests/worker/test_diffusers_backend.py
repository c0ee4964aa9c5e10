"""The diffusers backend on the tiny model, the registry that loads it, and the device choice.

Every render is 64×64 (or 128×128 for the upscale) with 2 steps: a tenth of a second on a CPU.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.errors import (
    BackendUnavailable,
    ConfigError,
    GenerationFailed,
    InvalidRequest,
    NotAllowed,
    TimeLimitExceeded,
)
from core.models.catalog import Family
from core.models.request import GenerationRequest, Mode
from core.settings import Settings, WorkerSettings
from tests.settings import with_settings
from worker.backend import ImageBackend
from worker.device import pick_device, pick_dtype
from worker.diffusers_backend import TINY_NOTE, DiffusersBackend, img2img_steps
from worker.postprocess import encode_png, upscale_lanczos
from worker.registry import ModelRegistry

RequestFactory = Callable[..., GenerationRequest]


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB")).astype(np.int16)


def gradient(width: int, height: int) -> Image.Image:
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :].repeat(height, 0)
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None].repeat(width, 1)
    return Image.fromarray(np.stack([x, y, 255 - x], axis=-1).astype(np.uint8), "RGB")


# --- txt2img -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("width", "height"), [(64, 64), (96, 64), (64, 128)])
async def test_txt2img_gives_images_of_exactly_the_requested_size(
    tiny_backend: DiffusersBackend, make_request: RequestFactory, width: int, height: int
) -> None:
    generation = await tiny_backend.generate(make_request(width=width, height=height, seeds=(5, 6)), None)

    assert [image.image.size for image in generation.images] == [(width, height)] * 2
    assert [image.seed for image in generation.images] == [5, 6]
    assert (generation.model, generation.backend, generation.note) == ("tiny", "diffusers", TINY_NOTE)
    assert all(image.image.mode == "RGB" for image in generation.images)


async def test_the_same_request_twice_gives_the_same_pixels_and_png_bytes(
    tiny_backend: DiffusersBackend, make_request: RequestFactory
) -> None:
    request = make_request(seeds=(1234,), negative_prompt="blurry")

    first = (await tiny_backend.generate(request, None)).images[0].image
    second = (await tiny_backend.generate(request, None)).images[0].image
    other_seed = (await tiny_backend.generate(make_request(seeds=(1235,)), None)).images[0].image

    assert first.tobytes() == second.tobytes()
    assert encode_png(first, {"seed": "1234"}) == encode_png(second, {"seed": "1234"})
    assert first.tobytes() != other_seed.tobytes()


async def test_image_i_of_a_batch_depends_only_on_seed_i(
    tiny_backend: DiffusersBackend, make_request: RequestFactory
) -> None:
    seeds = (11, 22, 33, 44)

    batch = await tiny_backend.generate(make_request(seeds=seeds), None)
    singles = [(await tiny_backend.generate(make_request(seeds=(seed,)), None)).images[0] for seed in seeds]

    for in_batch, alone in zip(batch.images, singles, strict=True):
        difference = np.abs(pixels(in_batch.image) - pixels(alone.image))
        # Batched CPU kernels round differently from single-image ones: measured here over 84 images, at most
        # 1 level (of 255) on at most 3 of the 12288 values of an image. A different seed changes nearly all.
        assert difference.max() <= 2
        assert np.count_nonzero(difference) <= 60
    distinct = {image.image.tobytes() for image in batch.images}
    assert len(distinct) == 4


async def test_progress_reports_every_step_in_order(
    tiny_backend: DiffusersBackend, make_request: RequestFactory
) -> None:
    seen: list[tuple[int, int]] = []

    await tiny_backend.generate(make_request(steps=3), None, lambda step, total: seen.append((step, total)))

    assert seen == [(1, 3), (2, 3), (3, 3)]


async def test_the_event_loop_stays_free_while_rendering(
    tiny_backend: DiffusersBackend, make_request: RequestFactory
) -> None:
    ticks = 0
    rendering = asyncio.create_task(tiny_backend.generate(make_request(seeds=(1, 2, 3, 4)), None))
    while not rendering.done():
        ticks += 1
        await asyncio.sleep(0.002)

    assert len((await rendering).images) == 4
    assert ticks >= 3


async def test_concurrent_requests_are_rendered_one_at_a_time_with_the_same_results(
    tiny_backend: DiffusersBackend, make_request: RequestFactory
) -> None:
    first, second = make_request(seeds=(1,)), make_request(seeds=(2,))
    alone = [
        (await tiny_backend.generate(request, None)).images[0].image.tobytes() for request in (first, second)
    ]

    together = await asyncio.gather(tiny_backend.generate(first, None), tiny_backend.generate(second, None))

    assert [generation.images[0].image.tobytes() for generation in together] == alone


async def test_a_cancelled_job_stops_its_render_at_the_next_step_and_only_then_frees_the_device(
    tiny_backend: DiffusersBackend, make_request: RequestFactory
) -> None:
    events: list[str] = []
    first_started = asyncio.Event()
    loop = asyncio.get_running_loop()

    def first_progress(step: int, total: int) -> None:
        events.append(f"first {step}/{total}")
        loop.call_soon_threadsafe(first_started.set)

    first = asyncio.create_task(
        tiny_backend.generate(make_request(steps=20, seeds=(1, 2, 3, 4)), None, first_progress)
    )
    await first_started.wait()
    first.cancel()  # what arq's job timeout or a shutdown does
    with pytest.raises(asyncio.CancelledError):
        await first
    asked_after = len(events)  # the render has been asked to stop by now
    busy_after_cancel = tiny_backend.device.busy

    second = await tiny_backend.generate(
        make_request(steps=2), None, lambda step, total: events.append(f"second {step}/{total}")
    )

    firsts = [event for event in events if event.startswith("first")]
    assert busy_after_cancel  # the cancelled job's thread still had the device
    assert len(firsts) <= asked_after + 1 < 20  # it stopped at the end of the step it was in
    assert events == [*firsts, "second 1/2", "second 2/2"]  # and the next render started only after that
    assert second.images[0].image.size == (64, 64)


async def test_a_render_past_its_time_limit_stops_at_the_next_step_and_the_next_job_renders(
    tiny_registry: ModelRegistry, make_request: RequestFactory
) -> None:
    backend = DiffusersBackend(tiny_registry, time_limit_s=1.0)
    steps: list[float] = []

    started = time.monotonic()
    with pytest.raises(TimeLimitExceeded, match=r"took longer than the 1 s limit") as exceeded:
        await backend.generate(
            make_request(steps=50, seeds=(1, 2, 3, 4)),
            None,
            lambda step, total: steps.append(time.monotonic()),
        )
    stopped = time.monotonic()

    durations = [later - earlier for earlier, later in zip([started, *steps], steps, strict=False)]
    assert exceeded.value.limit_s == 1.0
    assert len(steps) < 50
    assert steps[-1] - started >= 0.95  # the step it stopped at ended at (or just past) the limit…
    assert len(steps) == 1 or steps[-2] - started < 1.0 + 0.5  # …and the one before within it (+ set-up)
    assert stopped - started < 1.0 + max(durations) + 3  # so within about one step of the limit
    assert not backend.device.busy
    backend.time_limit_s = 600  # the next job on this device, with room for a loaded test machine
    generation = await backend.generate(make_request(), None)
    assert len(generation.images) == 1


def test_it_satisfies_the_backend_protocol(tiny_backend: DiffusersBackend) -> None:
    backend: ImageBackend = tiny_backend
    assert backend.name == "diffusers"


# --- img2img, variation, upscale -------------------------------------------------------------------------------


async def test_img2img_resizes_the_source_to_the_request_and_changes_it(
    tiny_backend: DiffusersBackend, make_request: RequestFactory
) -> None:
    source = gradient(80, 48)  # another size and aspect ratio: it is resized to the request's 64×64
    request = make_request(mode=Mode.IMG2IMG, source_image="src.png", strength=0.6, seeds=(3, 4))

    generation = await tiny_backend.generate(request, source)

    resized = source.resize((64, 64), Image.Resampling.LANCZOS)
    for image in generation.images:
        assert image.image.size == (64, 64)
        assert np.abs(pixels(image.image) - pixels(resized)).mean() > 5
    assert generation.images[0].image.tobytes() != generation.images[1].image.tobytes()


async def test_upscale_to_twice_the_size_at_low_strength_still_runs_a_step(
    tiny_backend: DiffusersBackend, make_request: RequestFactory
) -> None:
    source = gradient(64, 64)
    # 2 steps at strength 0.3 would run int(0.6) = 0 steps in diffusers; the backend stretches the schedule.
    request = make_request(
        mode=Mode.UPSCALE, source_image="src.png", strength=0.3, width=128, height=128, parent_index=0
    )
    seen: list[tuple[int, int]] = []

    generation = await tiny_backend.generate(request, source, lambda step, total: seen.append((step, total)))

    upscaled = generation.images[0].image
    assert upscaled.size == (128, 128)
    assert np.abs(pixels(upscaled) - pixels(upscale_lanczos(source, 2))).mean() > 1
    assert seen == [(1, 1)]


async def test_a_variation_from_the_same_source_and_seed_is_reproducible(
    tiny_backend: DiffusersBackend, make_request: RequestFactory
) -> None:
    request = make_request(mode=Mode.VARIATION, source_image="src.png", strength=0.7, seeds=(8,))

    first = await tiny_backend.generate(request, gradient(64, 64))
    second = await tiny_backend.generate(request, gradient(64, 64))

    assert first.images[0].image.tobytes() == second.images[0].image.tobytes()


@pytest.mark.parametrize(
    ("steps", "strength", "expected"),
    [(2, 1.0, 2), (2, 0.5, 2), (2, 0.3, 4), (10, 0.05, 20), (30, 0.05, 30), (1, 0.7, 2)],
)
def test_img2img_steps_always_leave_one_step_to_run(steps: int, strength: float, expected: int) -> None:
    assert img2img_steps(steps, strength) == expected
    assert int(expected * strength) >= 1


# --- refusals before compute, failures during it ---------------------------------------------------------------


@pytest.fixture
def cold_backend(model_cache_dir: Path, tiny_model_dir: Path) -> tuple[DiffusersBackend, ModelRegistry]:
    """A backend whose registry has loaded nothing: any compute would have to load the model first."""
    registry = ModelRegistry(WorkerSettings(model_cache_dir=model_cache_dir, device="cpu"))
    return DiffusersBackend(registry), registry


@pytest.mark.parametrize(
    ("overrides", "with_source", "field"),
    [
        ({"mode": Mode.IMG2IMG, "source_image": "k.png", "strength": 0.5}, False, "source_image"),
        ({"mode": Mode.UPSCALE, "source_image": "k.png", "strength": 0.3}, False, "source_image"),
        ({}, True, "source_image"),
        ({"width": 100}, False, "width"),
        ({"height": 60}, False, "height"),
        ({"width": 1024}, False, "width"),
        ({"steps": 51}, False, "steps"),
        ({"model": "dall-e-3"}, False, "model"),
        ({"model": "no-such-model"}, False, "model"),
        (
            {"model": "sd-turbo", "negative_prompt": "blurry", "width": 512, "height": 512},
            False,
            "negative_prompt",
        ),
        ({"seeds": (-1,)}, False, "seed"),
    ],
)
async def test_a_bad_request_is_refused_before_any_compute(
    cold_backend: tuple[DiffusersBackend, ModelRegistry],
    make_request: RequestFactory,
    overrides: dict[str, object],
    with_source: bool,
    field: str,
) -> None:
    backend, registry = cold_backend
    seen: list[tuple[int, int]] = []

    with pytest.raises(InvalidRequest) as refused:
        await backend.generate(
            make_request(**overrides),
            gradient(64, 64) if with_source else None,
            lambda step, total: seen.append((step, total)),
        )

    assert refused.value.field == field
    assert refused.value.message.endswith(".")
    assert registry.loaded_models() == []  # nothing was loaded, so nothing was computed
    assert seen == []


async def test_a_model_not_loaded_yet_is_loaded_on_first_use(
    cold_backend: tuple[DiffusersBackend, ModelRegistry], make_request: RequestFactory
) -> None:
    backend, registry = cold_backend

    generation = await backend.generate(make_request(), None)

    assert generation.images[0].image.size == (64, 64)
    assert registry.loaded_models() == ["tiny"]


async def test_an_exception_inside_the_pipeline_becomes_generation_failed(
    tiny_backend: DiffusersBackend, make_request: RequestFactory
) -> None:
    def broken(step: int, total: int) -> None:
        raise RuntimeError("CUDA error: device-side assert triggered " + "x" * 500)

    with pytest.raises(GenerationFailed) as failed:
        await tiny_backend.generate(make_request(), None, broken)

    assert failed.value.message == "The tiny model failed while rendering (RuntimeError)."
    # The backend is usable afterwards: the lock was released.
    assert len((await tiny_backend.generate(make_request(), None)).images) == 1


async def test_our_own_errors_from_the_progress_callback_pass_through(
    tiny_backend: DiffusersBackend, make_request: RequestFactory
) -> None:
    def cancelled(step: int, total: int) -> None:
        raise NotAllowed("This request was cancelled.")

    with pytest.raises(NotAllowed, match="cancelled"):
        await tiny_backend.generate(make_request(), None, cancelled)


# --- the registry ----------------------------------------------------------------------------------------------


def test_the_registry_keeps_one_warm_copy_shared_by_txt2img_and_img2img(tiny_registry: ModelRegistry) -> None:
    loaded = tiny_registry.load("tiny")

    assert tiny_registry.load("TINY") is loaded
    assert tiny_registry.loaded_models() == ["tiny"]
    assert loaded.img2img.unet is loaded.text2img.unet
    assert loaded.img2img.vae is loaded.text2img.vae
    assert type(loaded.text2img).__name__ == "StableDiffusionPipeline"
    assert type(loaded.img2img).__name__ == "StableDiffusionImg2ImgPipeline"
    assert loaded.text2img.safety_checker is None
    assert (loaded.device, loaded.dtype, loaded.spec.family) == ("cpu", "float32", Family.TINY)


def test_the_registry_uses_the_shared_settings_model_cache(settings: Settings, tiny_model_dir: Path) -> None:
    registry = ModelRegistry(with_settings(settings, worker={"device": "cpu"}).worker)
    started = time.perf_counter()

    loaded = registry.load("tiny")

    assert Path(loaded.source) == tiny_model_dir
    assert time.perf_counter() - started < 10


def test_a_real_model_that_cannot_be_downloaded_says_how_to_fix_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    registry = ModelRegistry(WorkerSettings(model_cache_dir=tmp_path, device="cpu"))
    started = time.perf_counter()

    with pytest.raises(BackendUnavailable) as unavailable:
        registry.load("sd15")

    message = unavailable.value.message
    assert message.startswith(
        'Model "sd15" (stable-diffusion-v1-5/stable-diffusion-v1-5) could not be fetched from the Hugging Face Hub.'
    )
    for remedy in ("huggingface.co", "HF_TOKEN", "IMAGEBOT_WORKER__MODELS"):
        assert remedy in message
    assert registry.loaded_models() == []
    assert time.perf_counter() - started < 10


@pytest.mark.parametrize("name", ["dall-e-3", "gpt-image-1"])
def test_the_registry_does_not_load_openai_models(name: str, tmp_path: Path) -> None:
    registry = ModelRegistry(WorkerSettings(model_cache_dir=tmp_path, device="cpu"))

    with pytest.raises(InvalidRequest, match="OpenAI backend") as refused:
        registry.load(name)

    assert refused.value.field == "model"


# --- device and precision --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("requested", "cuda", "mps", "expected"),
    [
        ("auto", True, True, "cuda"),
        ("auto", False, True, "mps"),
        ("auto", False, False, "cpu"),
        ("cpu", True, True, "cpu"),
        ("cuda", True, False, "cuda"),
        ("mps", False, True, "mps"),
    ],
)
def test_device_choice(requested: str, cuda: bool, mps: bool, expected: str) -> None:
    assert pick_device(requested, cuda, mps) == expected


@pytest.mark.parametrize("requested", ["cuda", "mps"])
def test_asking_for_a_missing_device_is_a_config_error_naming_the_variable(requested: str) -> None:
    with pytest.raises(ConfigError, match="IMAGEBOT_WORKER__DEVICE"):
        pick_device(requested, False, False)


@pytest.mark.parametrize(
    ("requested", "device", "family", "expected"),
    [
        ("auto", "cuda", Family.SDXL, "float16"),
        ("auto", "cuda", Family.FLUX, "bfloat16"),
        ("auto", "cpu", Family.SD15, "float32"),
        ("auto", "mps", Family.SD15, "float32"),
        ("bfloat16", "cpu", Family.TINY, "bfloat16"),
        ("float32", "cuda", Family.FLUX, "float32"),
    ],
)
def test_dtype_choice(requested: str, device: str, family: Family, expected: str) -> None:
    assert pick_dtype(requested, device, family) == expected  # type: ignore[arg-type]
