"""What a live preview costs: the latent-to-RGB map (on the model's thread), the JPEG and the image check (on the
post-processing threads), per preview; and, side by side in one run, the plain diffusers loop on the tiny model
against the same loop with a preview picture made at every step (the worst case: the worker makes one at most
every `live_preview_interval_s`).

Run from the repository root: `OMP_NUM_THREADS=1 python -m bench.live_preview [--rounds 20]`. Prints plain lines.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import torch

from core.models.catalog import Family
from moderation.image_check import NudeNetImageCheck
from worker.latent_preview import LatentMap, latent_map
from worker.live_preview import encode_live_preview
from worker.tiny import ensure_tiny_model


def timed(function: Callable[[], Any], rounds: int) -> tuple[float, Any]:
    """The median seconds of `rounds` calls, and the last call's result."""
    seconds, result = [], None
    for _ in range(rounds):
        mark = time.perf_counter()
        result = function()
        seconds.append(time.perf_counter() - mark)
    return statistics.median(seconds), result


def _check(check: NudeNetImageCheck, jpeg: bytes) -> None:
    asyncio.run(check.check_image(jpeg))


def per_preview(rounds: int) -> None:
    check = NudeNetImageCheck(threads=1)
    check.warm_up()
    for family, size in ((Family.SD15, 512), (Family.SDXL, 1024)):
        mapping = latent_map(family, None)
        assert mapping is not None
        latents = torch.randn(1, 4, size // 8, size // 8)
        map_s, picture = timed(partial(mapping.image, latents), rounds)
        encode_s, jpeg = timed(partial(encode_live_preview, picture, (size, size), 256), rounds)
        check_s, _ = timed(partial(_check, check, jpeg), rounds)
        print(
            f"{family.value} {size}×{size}: map {map_s * 1e3:.2f} ms (model thread), JPEG {encode_s * 1e3:.2f} ms, "
            f"image check {check_s * 1e3:.1f} ms; {len(jpeg)} bytes; "
            f"total {(map_s + encode_s + check_s) * 1e3:.1f} ms per preview",
            flush=True,
        )


def loops(rounds: int, steps: int) -> None:
    from diffusers import StableDiffusionPipeline

    folder = ensure_tiny_model(Path("imagebot-data/models"))
    pipe = StableDiffusionPipeline.from_pretrained(folder, safety_checker=None).to("cpu")
    pipe.set_progress_bar_config(disable=True)
    mapping: LatentMap | None = latent_map(Family.TINY, pipe.vae)
    assert mapping is not None

    def preview(_pipe: Any, step: int, timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
        mapping.image(tensors["latents"])
        return tensors

    def render(with_previews: bool) -> None:
        extra: dict[str, Any] = {"callback_on_step_end": preview} if with_previews else {}
        pipe(
            "a lighthouse at dusk",
            num_inference_steps=steps,
            width=128,
            height=128,
            generator=torch.Generator().manual_seed(1),
            **extra,
        )

    render(False)  # warm up
    plain, _ = timed(lambda: render(False), rounds)
    previewed, _ = timed(lambda: render(True), rounds)
    print(
        f"tiny 128×128, {steps} steps: plain diffusers loop {plain / steps * 1e3:.2f} ms/step, "
        f"with a preview map every step {previewed / steps * 1e3:.2f} ms/step "
        f"(ratio {previewed / plain:.3f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--steps", type=int, default=10)
    arguments = parser.parse_args()
    torch.set_num_threads(1)
    per_preview(arguments.rounds)
    loops(max(3, arguments.rounds // 6), arguments.steps)


if __name__ == "__main__":
    main()
