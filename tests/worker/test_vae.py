"""The VAE swapped into a model: the configured one decodes (its weights, its bytes), and the fp16-safe default
applies to SDXL in float16 only."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from core.errors import BackendUnavailable
from core.models.catalog import get_model
from core.settings import WorkerSettings
from tests.worker.conftest import RequestFactory
from worker.diffusers_backend import DiffusersBackend
from worker.registry import ModelRegistry
from worker.vae import swapped_vae, vae_source

FIX = "madebyollin/sdxl-vae-fp16-fix"


@pytest.fixture(scope="module")
def other_vae(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An AutoencoderKL shaped like the tiny model's, with other random weights, saved to a folder."""
    from diffusers import AutoencoderKL

    folder = tmp_path_factory.mktemp("other-vae")
    torch.manual_seed(7)
    AutoencoderKL(
        block_out_channels=(32, 64),
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        latent_channels=4,
        sample_size=64,
    ).save_pretrained(folder)
    return folder


def registry(model_cache_dir: Path, **settings: object) -> ModelRegistry:
    return ModelRegistry(
        WorkerSettings(model_cache_dir=model_cache_dir, device="cpu", dtype="float32", **settings)
    )


@pytest.mark.parametrize(
    ("model", "dtype", "settings", "expected"),
    [
        ("sdxl", "float16", {}, FIX),
        ("sdxl-turbo", "float16", {}, FIX),  # the whole family
        ("sdxl", "float32", {}, None),
        ("sdxl", "bfloat16", {}, None),
        ("sd15", "float16", {}, None),
        ("sdxl", "float16", {"sdxl_fp16_vae": None}, None),
        ("sdxl", "float16", {"vae": {"sdxl": "stock"}}, None),
        ("sdxl", "float16", {"vae": {"sdxl": "/vaes/mine"}}, "/vaes/mine"),
        ("sdxl", "float32", {"vae": {"sdxl": "/vaes/mine"}}, "/vaes/mine"),
        ("sd15", "float32", {"vae": {"sd15": "stabilityai/sd-vae-ft-mse"}}, "stabilityai/sd-vae-ft-mse"),
        ("sd15", "float32", {"vae": {"sd15": "a", "sdxl": "b"}}, "a"),
        ("sdxl", "float16", {"vae": {"sdxl": "family", "sdxl-turbo": "by-name"}}, "family"),
        ("sdxl-turbo", "float16", {"vae": {"sdxl": "family", "sdxl-turbo": "by-name"}}, "by-name"),
    ],
)
def test_the_fp16_fix_is_the_default_for_sdxl_in_float16_only_and_the_operators_choice_wins(
    model: str, dtype: str, settings: dict[str, object], expected: str | None
) -> None:
    chosen = vae_source(get_model(model), dtype, WorkerSettings(**settings))  # type: ignore[arg-type]
    assert chosen == expected


def test_the_configured_vae_is_the_one_the_pipeline_decodes_with(
    model_cache_dir: Path, other_vae: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from diffusers import AutoencoderKL

    caplog.set_level(logging.INFO, logger="worker.registry")
    swapped = registry(model_cache_dir, vae={"tiny": str(other_vae)})

    loaded = swapped.load("tiny")

    saved = AutoencoderKL.from_pretrained(other_vae).state_dict()
    used = loaded.text2img.vae.state_dict()
    assert all(torch.equal(used[key], saved[key]) for key in saved)
    assert loaded.img2img.vae is loaded.text2img.vae
    (line,) = [
        record.getMessage() for record in caplog.records if record.getMessage().startswith("loaded model")
    ]
    assert f"; vae {other_vae}, sdpa attention" in line  # reported in the start-up switch line
    swapped.close()


async def test_the_configured_vae_changes_the_images_and_the_stock_one_from_a_pipeline_folder_does_not(
    model_cache_dir: Path, tiny_model_dir: Path, other_vae: Path, make_request: RequestFactory
) -> None:
    async def render(**settings: object) -> bytes:
        backend = DiffusersBackend(registry(model_cache_dir, **settings))
        generation = await backend.generate(make_request(seeds=(4,)), None)
        await backend.close()
        return generation.images[0].image.tobytes()

    stock = await render()
    assert await render(vae={"tiny": str(other_vae)}) != stock
    assert await render(vae={"tiny": str(tiny_model_dir)}) == stock  # its vae/ subfolder: the same weights


def test_force_upcast_is_the_operators_when_set_and_reported(
    model_cache_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="worker.registry")
    off = registry(model_cache_dir, vae_force_upcast=False)

    loaded = off.load("tiny")

    assert loaded.text2img.vae.config.force_upcast is False
    assert any("vae force_upcast off" in record.getMessage() for record in caplog.records)
    off.close()


def test_a_vae_that_cannot_be_loaded_says_which_setting_to_fix(model_cache_dir: Path, tmp_path: Path) -> None:
    broken = registry(model_cache_dir, vae={"tiny": str(tmp_path / "missing")})

    with pytest.raises(BackendUnavailable, match="IMAGEBOT_WORKER__VAE") as refused:
        broken.load("tiny")

    assert str(tmp_path / "missing") in refused.value.message
    assert broken.loaded_models() == []


def test_the_sdxl_default_loads_for_sdxl_in_float16_and_falls_back_to_the_stock_vae_when_out_of_reach(
    other_vae: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sdxl, missing = get_model("sdxl"), str(tmp_path / "no-fp16-fix")

    vae, switch = swapped_vae(sdxl, "float16", WorkerSettings(sdxl_fp16_vae=str(other_vae)), offline=True)
    assert type(vae).__name__ == "AutoencoderKL" and vae.dtype == torch.float16
    assert switch == f"vae {other_vae}"
    assert swapped_vae(sdxl, "float32", WorkerSettings(sdxl_fp16_vae=str(other_vae)), offline=True) == (
        None,
        None,
    )

    with caplog.at_level(logging.WARNING, logger="worker.vae"):
        fallback = swapped_vae(sdxl, "float16", WorkerSettings(sdxl_fp16_vae=missing), offline=True)
    assert fallback == (None, "stock vae (fp16-safe one unavailable)")
    assert "IMAGEBOT_WORKER__SDXL_FP16_VAE" in caplog.records[0].getMessage()
    with pytest.raises(
        BackendUnavailable, match="IMAGEBOT_WORKER__VAE"
    ):  # the operator's own choice must load
        swapped_vae(sdxl, "float16", WorkerSettings(vae={"sdxl": missing}), offline=True)
