"""What a live preview costs: the latent-to-RGB map (on the model's thread), the JPEG and the image check (on the
post-processing threads), per preview; the two decoders side by side, the linear map and a tiny autoencoder
(AutoencoderTiny with taesd's architecture and random weights: the same compute as the published one), on the tiny
model's latents and on real-size ones; and, side by side in one run, the plain diffusers loop on the tiny model
against the same loop with a preview picture made at every step by either decoder (the worst case: the worker makes
one at most every `live_preview_interval_s`).

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
from worker.latent_preview import LatentMap, PreviewDecoder, TinyAutoencoder, latent_map
from worker.live_preview import encode_live_preview
from worker.tiny import ensure_tiny_model

PREVIEW_SIDE = 256  # WorkerSettings.live_preview_max_side's default


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


def tiny_autoencoder(device: str, max_side: int | None = None) -> TinyAutoencoder:
    """taesd's architecture (diffusers' AutoencoderTiny defaults) with seeded random weights."""
    from diffusers import AutoencoderTiny

    torch.manual_seed(0)
    return TinyAutoencoder(AutoencoderTiny().to(device).eval(), max_side)


def decoders(rounds: int, device: str) -> None:
    """Per preview, the linear map against the tiny autoencoder, each with the JPEG of its picture."""
    tiny_vae = _tiny_pipeline().vae
    linear_tiny = latent_map(Family.TINY, tiny_vae)
    linear_sd = latent_map(Family.SD15, None)
    assert linear_tiny is not None and linear_sd is not None
    full, capped = tiny_autoencoder(device), tiny_autoencoder(device, PREVIEW_SIDE)
    cases = (
        ("tiny 64×64 (32×32 latents)", 32, 64, linear_tiny),
        ("SD 512×512 (64×64 latents)", 64, 512, linear_sd),
    )
    cases += (("SDXL 1024×1024 (128×128 latents)", 128, 1024, linear_sd),)
    for label, side, size, linear in cases:
        latents = torch.randn(1, 4, side, side, device=device)
        line = []
        for name, decoder in (
            ("linear map", linear),
            ("tiny autoencoder at full size", full),
            (f"at ≤ {PREVIEW_SIDE} px (the worker's)", capped),
        ):
            decode: PreviewDecoder = decoder
            decode.image(latents)  # warm up
            decode_s, picture = timed(partial(decode.image, latents), rounds)
            encode_s, _ = timed(partial(encode_live_preview, picture, (size, size), PREVIEW_SIDE), rounds)
            line.append(
                f"{name} {decode_s * 1e3:.2f} ms ({picture.width}×{picture.height}) + JPEG {encode_s * 1e3:.2f} ms"
            )
        print(f"{label} on {device}: " + "; ".join(line), flush=True)


def _tiny_pipeline() -> Any:
    from diffusers import StableDiffusionPipeline

    folder = ensure_tiny_model(Path("imagebot-data/models"))
    pipe = StableDiffusionPipeline.from_pretrained(folder, safety_checker=None).to("cpu")
    pipe.set_progress_bar_config(disable=True)
    return pipe


def loops(rounds: int, steps: int) -> None:
    pipe = _tiny_pipeline()
    mapping: LatentMap | None = latent_map(Family.TINY, pipe.vae)
    assert mapping is not None
    autoencoder = tiny_autoencoder("cpu", PREVIEW_SIDE)

    def previewer(decoder: PreviewDecoder) -> Callable[..., dict[str, Any]]:
        def preview(_pipe: Any, step: int, timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
            decoder.image(tensors["latents"])
            return tensors

        return preview

    def render(decoder: PreviewDecoder | None) -> None:
        extra: dict[str, Any] = {} if decoder is None else {"callback_on_step_end": previewer(decoder)}
        pipe(
            "a lighthouse at dusk",
            num_inference_steps=steps,
            width=128,
            height=128,
            generator=torch.Generator().manual_seed(1),
            **extra,
        )

    render(None)  # warm up
    plain, _ = timed(lambda: render(None), rounds)
    mapped, _ = timed(lambda: render(mapping), rounds)
    decoded, _ = timed(lambda: render(autoencoder), rounds)
    print(
        f"tiny 128×128, {steps} steps: plain diffusers loop {plain / steps * 1e3:.2f} ms/step, "
        f"with a preview map every step {mapped / steps * 1e3:.2f} ms/step (ratio {mapped / plain:.3f}), "
        f"with a tiny autoencoder preview every step {decoded / steps * 1e3:.2f} ms/step "
        f"(ratio {decoded / plain:.3f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--steps", type=int, default=10)
    arguments = parser.parse_args()
    torch.set_num_threads(1)
    per_preview(arguments.rounds)
    decoders(arguments.rounds, "cuda" if torch.cuda.is_available() else "cpu")
    loops(max(3, arguments.rounds // 6), arguments.steps)


if __name__ == "__main__":
    main()
