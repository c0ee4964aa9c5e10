"""IMAGEBOT_WORKER__MODEL_PATHS: a catalog model loaded from a local diffusers folder instead of its Hub repo."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from core.errors import BackendUnavailable
from core.models.request import GenerationRequest
from core.settings import WorkerSettings
from worker.diffusers_backend import DiffusersBackend
from worker.registry import ModelRegistry

RequestFactory = Callable[..., GenerationRequest]


async def test_a_catalog_model_loads_from_its_folder_and_renders_what_those_weights_render(
    monkeypatch: pytest.MonkeyPatch,
    tiny_model_dir: Path,
    model_cache_dir: Path,
    tiny_backend: DiffusersBackend,
    make_request: RequestFactory,
) -> None:
    # sd15's Hub repo is out of reach: only the folder can serve it
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    registry = ModelRegistry(
        WorkerSettings(
            model_paths={"sd15": tiny_model_dir},
            model_cache_dir=model_cache_dir,
            device="cpu",
            dtype="float32",
        )
    )
    backend = DiffusersBackend(registry)
    try:
        generation = await backend.generate(
            make_request(model="sd15", width=256, height=256, seeds=(3,)), None
        )
        loaded = registry.get("sd15")
    finally:
        registry.close()
    alone = await tiny_backend.generate(make_request(width=256, height=256, seeds=(3,)), None)

    assert loaded is not None
    assert loaded.source == str(tiny_model_dir)
    assert generation.model == "sd15"
    assert generation.images[0].image.size == (256, 256)
    # the tiny weights under sd15's name draw exactly what they draw as tiny
    assert generation.images[0].image.tobytes() == alone.images[0].image.tobytes()


def test_a_folder_that_is_not_a_diffusers_model_says_which_setting_to_fix(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    registry = ModelRegistry(
        WorkerSettings(model_paths={"sdxl": tmp_path / "empty"}, model_cache_dir=tmp_path, device="cpu")
    )

    with pytest.raises(BackendUnavailable) as unavailable:
        registry.load("sdxl")

    message = unavailable.value.message
    assert f"IMAGEBOT_WORKER__MODEL_PATHS gives {tmp_path / 'empty'} for model “sdxl”" in message
    assert "stabilityai/stable-diffusion-xl-base-1.0" in message  # what removing the entry would load instead
    assert registry.loaded_models() == []
