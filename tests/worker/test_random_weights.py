"""Real-size SD 1.5 and SDXL with random weights: the published architectures, built offline, and rendering.

The parameter counts are checked on the meta device (shapes only: no memory, no time). The counts are those
of the published checkpoints (stable-diffusion-v1-5/stable-diffusion-v1-5, stabilityai/stable-diffusion-xl-base-1.0,
openai/clip-vit-large-patch14, laion's OpenCLIP ViT-bigG/14 as SDXL's text_encoder_2), so a config typed wrong
here fails.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import torch

from core.settings import WorkerSettings
from worker.random_weights import MARKER, build_pipeline, ensure_random_model, folder_name, is_complete
from worker.registry import ModelRegistry

PUBLISHED_PARAMETERS = {
    "sd15": {"unet": 859_520_964, "vae": 83_653_863, "text_encoder": 123_060_480},
    "sdxl": {
        "unet": 2_567_463_684,
        "vae": 83_653_863,
        "text_encoder": 123_060_480,
        "text_encoder_2": 694_659_840,
    },
}


def parameters(module: torch.nn.Module) -> int:
    return sum(parameter.numel() for parameter in module.parameters())


@pytest.mark.parametrize("name", ["sd15", "sdxl"])
def test_the_pipelines_have_the_published_architectures_parameter_for_parameter(name: str) -> None:
    with torch.device("meta"):
        pipeline = build_pipeline(name, "float16")  # type: ignore[arg-type]

    counts = {component: parameters(getattr(pipeline, component)) for component in PUBLISHED_PARAMETERS[name]}

    assert counts == PUBLISHED_PARAMETERS[name]
    assert {parameter.dtype for parameter in pipeline.unet.parameters()} == {torch.float16}
    # the UNet's cross-attention reads what the text encoders give it
    widths = [pipeline.text_encoder.config.hidden_size]
    if name == "sdxl":
        widths.append(pipeline.text_encoder_2.config.hidden_size)
        # it decodes in float16, as the fp16-safe VAE the worker swaps in for the real SDXL does
        assert pipeline.vae.config.force_upcast is False
        assert pipeline.unet.config.projection_class_embeddings_input_dim == (
            pipeline.text_encoder_2.config.projection_dim + 6 * pipeline.unet.config.addition_time_embed_dim
        )
    assert pipeline.unet.config.cross_attention_dim == sum(widths)
    native = pipeline.unet.config.sample_size * pipeline.vae_scale_factor
    assert native == {"sd15": 512, "sdxl": 1024}[name]


@pytest.fixture(scope="session")
def real_size_sd15(model_cache_dir: Path) -> tuple[Path, float]:
    """Real-size SD 1.5 with random weights, saved in float16 (2.1 GB), built once: its folder and build seconds."""
    started = time.perf_counter()
    folder = ensure_random_model(model_cache_dir, "sd15")
    return folder, time.perf_counter() - started


def test_real_size_sd15_is_built_once_loaded_by_the_worker_and_renders(
    real_size_sd15: tuple[Path, float], model_cache_dir: Path
) -> None:
    # Measured on the 2-core dev machine: build about 15 s, load 8 s, one 1-step 64×64 render 2 s.
    folder, build_seconds = real_size_sd15
    weights = folder / "unet" / "diffusion_pytorch_model.safetensors"
    assert folder.name == folder_name("sd15", "float16")
    assert is_complete(folder, "sd15", "float16")
    assert (folder / MARKER).is_file()
    assert 1_700_000_000 < weights.stat().st_size < 1_750_000_000  # 859.5 M float16 parameters
    before = weights.stat().st_mtime_ns
    assert ensure_random_model(model_cache_dir, "sd15") == folder  # cached: not rebuilt
    assert weights.stat().st_mtime_ns == before

    registry = ModelRegistry(
        WorkerSettings(
            model_paths={"sd15": folder}, device="cpu", dtype="float32", model_cache_dir=model_cache_dir
        )
    )
    try:
        started = time.perf_counter()
        loaded = registry.load("sd15")
        load_seconds = time.perf_counter() - started
        assert loaded.source == str(folder)
        assert parameters(loaded.text2img.unet) == PUBLISHED_PARAMETERS["sd15"]["unet"]
        assert loaded.text2img.unet.dtype == torch.float32

        started = time.perf_counter()
        image = loaded.text2img(
            "a lighthouse at dusk",
            num_inference_steps=1,
            width=64,
            height=64,
            generator=torch.Generator().manual_seed(7),
        ).images[0]
        render_seconds = time.perf_counter() - started
    finally:
        registry.close()

    assert image.size == (64, 64)
    assert np.asarray(image).std() > 0  # a picture of noise, not a blank (NaN) square
    print(
        f"real-size SD 1.5: build {build_seconds:.1f} s, load {load_seconds:.1f} s, one step {render_seconds:.1f} s"
    )


def test_a_model_without_a_real_size_recipe_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="sd15, sdxl"):
        ensure_random_model(tmp_path, "flux")  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []
