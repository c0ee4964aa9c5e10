"""Live previews from a tiny autoencoder the operator configures, and the linear map when it cannot be loaded.

The autoencoder is diffusers' AutoencoderTiny built from a config with random weights and saved to a folder (the
published taesd/taesdxl are the same architecture with trained weights): what it decodes is noise, but its own.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy
import pytest
import torch
from PIL import Image

from core.settings import WorkerSettings
from tests.settings import with_settings
from tests.worker.conftest import RequestFactory
from worker.diffusers_backend import DiffusersBackend
from worker.latent_preview import LatentMap, PreviewDecoders, TinyAutoencoder
from worker.registry import ModelRegistry


@pytest.fixture(scope="module")
def autoencoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small random-weight AutoencoderTiny (4 latent channels, 8× upscaling, like taesd) in a folder."""
    from diffusers import AutoencoderTiny

    folder = tmp_path_factory.mktemp("taesd")
    torch.manual_seed(11)
    AutoencoderTiny(
        encoder_block_out_channels=(16, 16, 16, 16),
        decoder_block_out_channels=(16, 16, 16, 16),
        latent_channels=4,
    ).save_pretrained(folder)
    return folder


class Previews:
    """A progress callback that takes a live preview at every step (a PreviewSink)."""

    def __init__(self) -> None:
        self.images: list[Image.Image] = []

    def __call__(self, step: int, total: int) -> None:
        pass

    def preview_due(self, step: int, total: int) -> bool:
        return True

    def preview(self, step: int, total: int, image: Image.Image) -> None:
        self.images.append(image)


def decoders(model_cache_dir: Path, source: str | None) -> PreviewDecoders:
    autoencoders = {} if source is None else {"tiny": source}
    return PreviewDecoders(
        WorkerSettings(model_cache_dir=model_cache_dir, live_preview_autoencoder=autoencoders)
    )


def test_a_configured_tiny_autoencoder_decodes_the_preview_at_full_size(
    tiny_registry: ModelRegistry, model_cache_dir: Path, autoencoder: Path
) -> None:
    from diffusers import AutoencoderTiny

    loaded = tiny_registry.load("tiny")
    decoder = decoders(model_cache_dir, str(autoencoder)).get(loaded)
    linear = decoders(model_cache_dir, None).get(loaded)
    latents = torch.randn(2, 4, 16, 24, generator=torch.Generator().manual_seed(0))

    assert isinstance(decoder, TinyAutoencoder) and isinstance(linear, LatentMap)
    picture = decoder.image(latents)
    assert picture.size == (24 * 8, 16 * 8)  # taesd's decoder upscales 8×
    saved = AutoencoderTiny.from_pretrained(autoencoder)
    with torch.inference_mode():
        expected = saved.decode(latents[:1]).sample[0].clamp(-1, 1)
    pixels = torch.from_numpy(numpy.array(picture)).permute(2, 0, 1).float() / 127.5 - 1
    assert torch.allclose(pixels, expected, atol=1 / 127.5)  # its weights' decoding, not the map's
    mapped = linear.image(latents).resize(picture.size, Image.Resampling.BILINEAR)
    assert mapped.tobytes() != picture.tobytes()


def test_the_autoencoder_decodes_no_larger_than_the_preview_is_shown(
    tiny_registry: ModelRegistry, model_cache_dir: Path, autoencoder: Path
) -> None:
    """SD's 64×64 latents would decode to 512×512; the preview is shown at 256 at most, so it decodes to that."""
    settings = WorkerSettings(
        model_cache_dir=model_cache_dir, live_preview_autoencoder={"tiny": str(autoencoder)}
    )
    decoder = PreviewDecoders(settings).get(tiny_registry.load("tiny"))

    assert isinstance(decoder, TinyAutoencoder)
    assert decoder.image(torch.randn(1, 4, 64, 96)).size == (256, 168)
    assert decoder.image(torch.randn(1, 4, 32, 32)).size == (256, 256)


def test_an_autoencoder_that_cannot_be_loaded_falls_back_to_the_linear_map_and_is_logged_once(
    tiny_registry: ModelRegistry, model_cache_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    loaded = tiny_registry.load("tiny")
    (tmp_path / "config.json").write_text("{not json")
    previews = decoders(model_cache_dir, str(tmp_path))
    caplog.set_level(logging.WARNING, logger="worker.latent_preview")

    first = previews.get(loaded)
    previews.forget("tiny")  # evicted and loaded again: the broken autoencoder is not tried twice
    second = previews.get(loaded)

    assert isinstance(first, LatentMap) and isinstance(second, LatentMap)
    warnings = [record.getMessage() for record in caplog.records]
    assert len(warnings) == 1
    assert warnings[0].startswith(f"model tiny: the tiny autoencoder {tmp_path} could not be loaded (")
    assert warnings[0].endswith("live previews use the linear latent map")


async def test_a_render_shows_the_autoencoders_previews(
    tiny_registry: ModelRegistry, model_cache_dir: Path, autoencoder: Path, make_request: RequestFactory
) -> None:
    settings = with_settings(tiny_registry.settings, live_preview_autoencoder={"tiny": str(autoencoder)})
    previews, plain = Previews(), Previews()

    generation = await DiffusersBackend(tiny_registry, settings=settings).generate(
        make_request(steps=4), None, previews
    )
    await DiffusersBackend(tiny_registry).generate(make_request(steps=4), None, plain)

    latent_side = 64 // 2  # the tiny model's VAE halves each side
    assert [image.size for image in previews.images] == [
        (latent_side * 8, latent_side * 8)
    ] * 3  # not the last
    assert [image.size for image in plain.images] == [(latent_side, latent_side)] * 3
    assert generation.images[0].image.size == (64, 64)
