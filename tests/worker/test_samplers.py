"""--sampler on the real tiny pipeline: every name renders, deterministically, and the model's own scheduler
comes back after each request."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from core.errors import InvalidRequest
from core.models.request import GenerationRequest
from core.models.sampler import SAMPLERS
from worker.diffusers_backend import DiffusersBackend
from worker.samplers import build_scheduler

RequestFactory = Callable[..., GenerationRequest]


async def render(backend: DiffusersBackend, request: GenerationRequest) -> bytes:
    return (await backend.generate(request, None)).images[0].image.tobytes()


@pytest.mark.parametrize("name", list(SAMPLERS))
async def test_each_sampler_renders_the_same_bytes_for_the_same_seed_and_leaves_the_model_scheduler(
    tiny_backend: DiffusersBackend, make_request: RequestFactory, name: str
) -> None:
    pipeline = tiny_backend.registry.load("tiny").text2img
    own = pipeline.scheduler
    request = make_request(sampler=name, seeds=(3, 4))

    first = await render(tiny_backend, request)
    second = await render(tiny_backend, request)

    assert first == second
    assert pipeline.scheduler is own and type(own).__name__ == "EulerDiscreteScheduler"


async def test_a_sampler_changes_the_picture_and_does_not_leak_into_the_next_request(
    tiny_backend: DiffusersBackend, make_request: RequestFactory
) -> None:
    plain = await render(tiny_backend, make_request(seeds=(9,)))
    ancestral = await render(tiny_backend, make_request(seeds=(9,), sampler="euler a"))
    after = await render(tiny_backend, make_request(seeds=(9,)))

    assert ancestral != plain
    assert after == plain


def test_schedulers_keep_the_models_training_config() -> None:
    from diffusers import EulerDiscreteScheduler

    own = EulerDiscreteScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012)
    karras = build_scheduler("dpm++ 2m karras", own.config)

    assert type(karras).__name__ == "DPMSolverMultistepScheduler"
    assert karras.config.use_karras_sigmas and karras.config.algorithm_type == "dpmsolver++"
    assert karras.config.beta_schedule == "scaled_linear" and karras.config.beta_end == 0.012


def test_an_unknown_sampler_reaching_a_worker_is_refused_with_the_names() -> None:
    with pytest.raises(InvalidRequest) as refused:
        build_scheduler("heun", {})
    assert "Euler a" in refused.value.message and "DPM++ 2M Karras" in refused.value.message
