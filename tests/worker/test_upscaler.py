"""The real upscaler: tiny random-weight ESRGAN models built from spandrel's own architecture class, SAVED as real
weights files are (.pth state dict, .safetensors) and loaded back through `load_upscaler`, as a worker loads
Real-ESRGAN or 4x-UltraSharp.

Tolerance for tiled vs untiled: at most one grey level (1/255) on any pixel. With an overlap wider than the
model's receptive field the two agree exactly here; the allowance is for float rounding on other hardware.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.errors import ConfigError
from core.settings import UpscalerSettings
from worker.upscaler import Upscaler, load_upscaler

TILED_TOLERANCE = 1  # grey levels


def save_esrgan(path: Path, scale: int, seed: int = 0) -> Path:
    """A random ESRGAN (8 filters, 1 block) saved like downloaded weights: a bare state dict."""
    import torch
    from spandrel.architectures.ESRGAN import ESRGAN

    torch.manual_seed(seed)
    model = ESRGAN(in_nc=3, out_nc=3, num_filters=8, num_blocks=1, scale=scale)
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(model.state_dict(), str(path))
    else:
        torch.save(model.state_dict(), path)
    return path


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    folder = tmp_path_factory.mktemp("upscalers")
    return {2: save_esrgan(folder / "x2.pth", 2), 4: save_esrgan(folder / "x4.safetensors", 4, seed=1)}


def picture(width: int, height: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    smooth = 128 + 90 * np.sin(x[..., None] / (7 + 3 * np.arange(3))) * np.cos(y[..., None] / 11)
    noisy = smooth + rng.normal(0, 12, (height, width, 3))
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8), "RGB")


def load(path: Path, tile: int = 48, overlap: int = 16) -> Upscaler:
    upscaler = load_upscaler(UpscalerSettings(model=str(path), tile=tile, tile_overlap=overlap), "cpu")
    assert upscaler is not None
    return upscaler


def test_saved_weights_load_with_their_scale_and_name(weights: dict[int, Path]) -> None:
    assert load(weights[2]).scale == 2 and load(weights[2]).name == "x2.pth"
    assert load(weights[4]).scale == 4
    assert load_upscaler(UpscalerSettings(), "cpu") is None


def test_the_tiled_upscale_equals_the_untiled_one(weights: dict[int, Path]) -> None:
    image = picture(150, 110)  # 4 × 3 tiles of 48 px
    tiled = np.asarray(load(weights[2], tile=48, overlap=16).super_resolve(image), dtype=np.int16)
    whole = np.asarray(load(weights[2], tile=512, overlap=16).super_resolve(image), dtype=np.int16)
    assert tiled.shape == whole.shape == (220, 300, 3)
    assert whole.std() > 5  # the random model draws a picture, not a flat field
    assert np.abs(tiled - whole).max() <= TILED_TOLERANCE
    # without an overlap the seams would show: the tolerance above is not vacuous
    seamed = np.asarray(load(weights[2], tile=48, overlap=0).super_resolve(image), dtype=np.int16)
    assert np.abs(seamed - whole).max() > 4 * TILED_TOLERANCE


@pytest.mark.parametrize(("model_scale", "factor"), [(2, 2), (2, 4), (4, 4), (4, 2)])
def test_subtle_output_is_exactly_factor_times_the_input(
    weights: dict[int, Path], model_scale: int, factor: int
) -> None:
    image = picture(37, 29)  # odd sizes: nothing rounds
    assert load(weights[model_scale]).upscale(image, factor).size == (37 * factor, 29 * factor)


def test_a_model_larger_than_the_factor_is_brought_down_with_lanczos(weights: dict[int, Path]) -> None:
    upscaler = load(weights[4])
    image = picture(40, 30)
    expected = upscaler.super_resolve(image).resize((80, 60), Image.Resampling.LANCZOS)
    assert upscaler.upscale(image, 2).tobytes() == expected.tobytes()


def test_the_same_image_upscales_to_the_same_bytes(weights: dict[int, Path]) -> None:
    image = picture(60, 50, seed=3)
    first, second = load(weights[2]).upscale(image, 4), load(weights[2]).upscale(image, 4)
    assert first.tobytes() == second.tobytes()


def test_a_stop_between_tiles_ends_the_upscale(weights: dict[int, Path]) -> None:
    calls = []

    def stop() -> None:
        calls.append(1)
        if len(calls) == 2:
            raise TimeoutError("past the limit")

    with pytest.raises(TimeoutError):
        load(weights[2]).upscale(picture(150, 110), 2, stop)
    assert len(calls) == 2


def test_weights_that_are_missing_or_not_super_resolution_are_a_configuration_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigError, match=r"IMAGEBOT_UPSCALER__MODEL.*no such file"):
        load_upscaler(UpscalerSettings(model=str(tmp_path / "missing.pth")), "cpu")
    same_size = save_esrgan(tmp_path / "x1.pth", 1)
    with pytest.raises(ConfigError, match="super-resolution"):
        load_upscaler(UpscalerSettings(model=str(same_size)), "cpu")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a model")
    with pytest.raises(ConfigError, match="not a model spandrel can load"):
        load_upscaler(UpscalerSettings(model=str(junk)), "cpu")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(ConfigError, match="could not be fetched from the Hub repo owner/repo"):
        load_upscaler(UpscalerSettings(model="owner/repo/RealESRGAN_x4plus.pth"), "cpu")


def test_a_tile_overlap_over_half_the_tile_is_refused() -> None:
    with pytest.raises(ValueError, match="TILE_OVERLAP"):
        UpscalerSettings(tile=64, tile_overlap=40)


def test_an_upscaler_is_a_value(weights: dict[int, Path]) -> None:
    upscaler = load(weights[2])
    assert dataclasses.replace(upscaler, tile=64).tile == 64
