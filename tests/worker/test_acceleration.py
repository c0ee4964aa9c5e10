"""The pipeline speed switches: each one asked for is applied and reported, GPU-only ones are skipped on a CPU,
and the pictures stay the same pictures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from diffusers import StableDiffusionPipeline

from core.models.catalog import get_model
from core.settings import WorkerSettings
from worker.acceleration import accelerate


def render(pipeline: StableDiffusionPipeline) -> np.ndarray:
    with torch.inference_mode():
        images = pipeline(
            "a red fox",
            num_inference_steps=2,
            width=64,
            height=64,
            generator=torch.Generator().manual_seed(7),
            output_type="np",
        ).images
    return np.asarray(images[0])


def test_switches_are_applied_reported_and_keep_the_picture(tiny_model_dir: Path) -> None:
    plain = StableDiffusionPipeline.from_pretrained(tiny_model_dir, safety_checker=None)
    plain.set_progress_bar_config(disable=True)
    tuned = StableDiffusionPipeline.from_pretrained(tiny_model_dir, safety_checker=None)
    tuned.set_progress_bar_config(disable=True)
    settings = WorkerSettings(
        channels_last=True,
        attention_slicing=True,
        vae_tiling=True,
        vae_slicing=True,
        cpu_offload=True,
        batch_max_images=8,
    )

    switches = accelerate(tuned, get_model("tiny"), settings, "cpu")

    assert switches == [
        "sdpa attention",
        "attention slicing",
        "channels-last",
        "vae tiling",
        "vae slicing",
        "batch-invariant kernels",
    ]
    assert "model cpu offload" not in switches  # a GPU-only switch, skipped on a CPU worker
    assert tuned.unet.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
    assert tuned.vae.use_tiling and tuned.vae.use_slicing
    assert np.abs(render(tuned) - render(plain)).max() < 1e-4


def test_nothing_is_switched_on_by_default(tiny_model_dir: Path) -> None:
    pipeline = StableDiffusionPipeline.from_pretrained(tiny_model_dir, safety_checker=None)
    assert accelerate(pipeline, get_model("tiny"), WorkerSettings(), "cpu") == [
        "sdpa attention",
    ]
    assert not pipeline.vae.use_tiling
