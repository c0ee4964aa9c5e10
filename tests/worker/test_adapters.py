"""LoRA adapters on the real tiny pipeline: a random LoRA made with peft, saved to a .safetensors file and loaded
through the worker's own path (AdapterSettings → load_lora_weights → set_adapters)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from core.errors import InvalidRequest
from core.models.request import GenerationRequest, LoraRef
from core.settings import AdapterSettings, updated
from tests.adapter_fixture import adapter_settings, tiny_controlnet_dir, tiny_lora_files  # noqa: F401
from worker.diffusers_backend import DiffusersBackend
from worker.registry import ModelRegistry

RequestFactory = Callable[..., GenerationRequest]


@pytest.fixture
def backend(tiny_registry: ModelRegistry, adapter_settings: AdapterSettings) -> DiffusersBackend:  # noqa: F811
    return DiffusersBackend(tiny_registry, adapters=adapter_settings)


async def render(backend: DiffusersBackend, request: GenerationRequest) -> bytes:
    return (await backend.generate(request, None)).images[0].image.tobytes()


async def test_a_lora_changes_the_picture_weight_zero_does_not_and_nothing_leaks(
    backend: DiffusersBackend, make_request: RequestFactory
) -> None:
    before = await render(backend, make_request(seeds=(5,)))
    with_lora = await render(backend, make_request(seeds=(5,), loras=(LoraRef(name="glow", weight=1.0),)))
    zero = await render(backend, make_request(seeds=(5,), loras=(LoraRef(name="glow", weight=0.0),)))
    after = await render(backend, make_request(seeds=(5,)))

    assert with_lora != before
    assert zero == before
    assert after == before


async def test_two_loras_mix_by_weight_and_the_same_request_repeats_exactly(
    backend: DiffusersBackend, make_request: RequestFactory
) -> None:
    both = make_request(
        seeds=(8,), loras=(LoraRef(name="glow", weight=0.7), LoraRef(name="grain", weight=-0.5))
    )
    glow_only = make_request(seeds=(8,), loras=(LoraRef(name="glow", weight=0.7),))

    first, again = await render(backend, both), await render(backend, both)
    alone = await render(backend, glow_only)

    assert first == again
    assert first != alone
    assert set(backend.loras["tiny"].loaded) == {"glow", "grain"}


async def test_past_the_bound_the_least_recently_used_lora_is_unloaded(
    tiny_registry: ModelRegistry,
    adapter_settings: AdapterSettings,  # noqa: F811
    make_request: RequestFactory,
) -> None:
    bounded = DiffusersBackend(tiny_registry, adapters=updated(adapter_settings, {"max_loaded_loras": 1}))
    plain = await render(bounded, make_request(seeds=(2,)))
    await render(bounded, make_request(seeds=(2,), loras=(LoraRef(name="glow"),)))
    grain = await render(bounded, make_request(seeds=(2,), loras=(LoraRef(name="grain"),)))

    assert bounded.loras["tiny"].loaded == ["grain"]
    assert tiny_registry.load("tiny").text2img.get_list_adapters() == {"unet": ["grain"]}
    assert grain != plain
    assert await render(bounded, make_request(seeds=(2,))) == plain
    tiny_registry.load("tiny").text2img.delete_adapters(["grain"])  # the registry is shared by the session


async def test_a_lora_whose_file_is_gone_fails_with_a_message_for_the_operator(
    tiny_registry: ModelRegistry, tmp_path: Path, make_request: RequestFactory
) -> None:
    missing = AdapterSettings.model_validate(
        {"loras": {"gone": {"source": str(tmp_path / "gone.safetensors"), "family": "tiny"}}}
    )
    backend = DiffusersBackend(tiny_registry, adapters=missing)

    with pytest.raises(InvalidRequest) as refused:
        await backend.generate(make_request(loras=(LoraRef(name="gone"),)), None)
    assert "“gone” couldn't be loaded" in refused.value.message
