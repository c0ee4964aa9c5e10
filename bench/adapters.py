"""LoRA, ControlNet and sampler requests next to the plain diffusers loop doing the same work, in one run.

    .venv/bin/python -m bench.adapters [--repeats 5]

Rows (median seconds per request after a warm-up, and imagebot's time over the plain loop's):
- no adapter: DiffusersBackend.generate against `pipe(...)`;
- one LoRA (warm): the backend (set_adapters before, disable_lora after, every request) against the plain loop
  with the LoRA loaded once and left active;
- two LoRAs alternating: the backend switching adapters every request against the plain loop doing the same
  `set_adapters` calls itself;
- a sampler: the backend building DPM++ 2M Karras from the model's config each request against the plain loop
  with that scheduler set once;
- ControlNet (canny): the backend (Canny map + the warm ControlNet pipeline) against the plain ControlNet
  pipeline given the same map;
- first use of a LoRA: loading it from its .safetensors file (once per worker, then kept warm).

Defaults need no download: the tiny random-weight model, a random LoRA and ControlNet made for it
(worker/tiny_adapters.py). IMAGEBOT_BENCH_DEVICE=cuda picks the device (default: cpu).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

from PIL import Image, ImageDraw

from core.models.request import ControlRef, GenerationRequest, LoraRef, Requester
from core.settings import AdapterSettings, WorkerSettings
from worker.diffusers_backend import DiffusersBackend
from worker.registry import ModelRegistry
from worker.samplers import build_scheduler
from worker.tiny import ensure_tiny_model
from worker.tiny_adapters import build_tiny_controlnet, build_tiny_lora

BENCH = Requester(platform="cli", user_id="bench", chat_id="bench")


def request(**fields: Any) -> GenerationRequest:
    base: dict[str, Any] = {
        "request_id": "bench",
        "prompt": "a lighthouse at dusk",
        "width": 64,
        "height": 64,
        "steps": 4,
        "guidance": 5.0,
        "seeds": (1,),
        "model": "tiny",
        "requester": BENCH,
    }
    return GenerationRequest(**(base | fields))


def square() -> Image.Image:
    image = Image.new("RGB", (64, 64), "black")
    ImageDraw.Draw(image).rectangle((16, 16, 47, 47), fill="white")
    return image


async def median(call: Callable[[int], Awaitable[Any]], repeats: int) -> float:
    await call(-1)  # warm-up
    times = []
    for index in range(repeats):
        started = time.perf_counter()
        await call(index)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


async def run(repeats: int, device: str) -> None:
    import torch
    from diffusers import ControlNetModel, StableDiffusionControlNetPipeline

    from worker.control import canny_map

    root = Path(tempfile.mkdtemp(prefix="bench-adapters-"))
    model = ensure_tiny_model(root / "models")
    loras = {name: build_tiny_lora(model, root / name, seed=seed) for name, seed in (("a", 1), ("b", 2))}
    controlnet_dir = build_tiny_controlnet(model, root / "canny")
    adapters = AdapterSettings.model_validate(
        {
            "loras": {name: {"source": str(path), "family": "tiny"} for name, path in loras.items()},
            "control": {"models": {"tiny": {"canny": str(controlnet_dir)}}},
        }
    )
    backend, plain = _pipelines(model, root, device, adapters)
    own_scheduler = plain.scheduler

    def loop(pipe: Any = plain, **extra: Any) -> Callable[[int], Awaitable[Any]]:
        async def call(_: int) -> Any:
            generator = [torch.Generator(device="cpu").manual_seed(1)]
            return pipe(
                prompt="a lighthouse at dusk", num_inference_steps=4, guidance_scale=5.0, width=64, height=64,
                generator=generator, output_type="pil", **extra,
            )  # fmt: skip

        return call

    def ours(**fields: Any) -> Callable[[int], Awaitable[Any]]:
        async def call(index: int) -> Any:
            chosen = fields.get("loras")
            if callable(chosen):
                return await backend.generate(request(**(fields | {"loras": chosen(index)})), None)
            control = square() if "control" in fields else None
            return await backend.generate(request(**fields), None, control=control)

        return call

    rows: list[tuple[str, float, float]] = []
    rows.append(("no adapter", await median(ours(), repeats), await median(loop(), repeats)))

    started = time.perf_counter()
    plain.load_lora_weights(str(loras["a"].parent), weight_name=loras["a"].name, adapter_name="a")
    first_load = time.perf_counter() - started
    plain.load_lora_weights(str(loras["b"].parent), weight_name=loras["b"].name, adapter_name="b")
    plain.set_adapters(["a"], [0.8])
    one = await median(loop(), repeats)
    rows.append(("one LoRA (warm)", await median(ours(loras=(LoraRef(name="a", weight=0.8),)), repeats), one))

    def alternate(index: int) -> tuple[LoraRef, ...]:
        return (LoraRef(name="a" if index % 2 else "b", weight=0.8),)

    async def plain_alternating(index: int) -> Any:
        plain.set_adapters(["a" if index % 2 else "b"], [0.8])
        return await loop()(index)

    rows.append(
        (
            "two LoRAs alternating",
            await median(ours(loras=alternate), repeats),
            await median(plain_alternating, repeats),
        )
    )
    plain.disable_lora()

    plain.scheduler = build_scheduler("dpm++ 2m karras", own_scheduler.config)
    karras = await median(loop(), repeats)
    plain.scheduler = own_scheduler
    rows.append(("sampler DPM++ 2M Karras", await median(ours(sampler="dpm++ 2m karras"), repeats), karras))

    controlnet = ControlNetModel.from_pretrained(controlnet_dir).to(device)
    control_pipe = StableDiffusionControlNetPipeline.from_pipe(plain, controlnet=controlnet)
    control_pipe.set_progress_bar_config(disable=True)
    edges = canny_map(square())
    control_ref = ControlRef(kind="canny", image="inputs/bench.png")
    rows.append(
        (
            "ControlNet canny",
            await median(ours(control=control_ref), repeats),
            await median(loop(control_pipe, image=edges, controlnet_conditioning_scale=1.0), repeats),
        )
    )

    print(f"tiny model, {device}, 64×64, 4 steps, median of {repeats} after a warm-up")
    print(f"{'request':<26}{'imagebot s':>12}{'diffusers s':>13}{'ratio':>8}")
    for name, mine, theirs in rows:
        print(f"{name:<26}{mine:>12.4f}{theirs:>13.4f}{mine / theirs:>8.2f}")
    print(f"first use of a LoRA (load from .safetensors, once per worker): {first_load:.4f} s")


def _pipelines(
    model: Path, root: Path, device: str, adapters: AdapterSettings
) -> tuple[DiffusersBackend, Any]:
    """imagebot's backend and a plain diffusers pipeline, each with its own copy of the tiny model."""
    from diffusers import StableDiffusionPipeline

    settings = WorkerSettings.model_validate(
        {"model_cache_dir": root / "models", "device": device, "dtype": "float32"}
    )
    registry = ModelRegistry(settings)
    registry.load("tiny")
    plain: Any = StableDiffusionPipeline.from_pretrained(
        model, safety_checker=None, requires_safety_checker=False
    )
    plain.to(device)
    plain.set_progress_bar_config(disable=True)
    return DiffusersBackend(registry, adapters=adapters), plain


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    arguments = parser.parse_args()
    device = os.environ.get("IMAGEBOT_BENCH_DEVICE", "cpu")
    asyncio.run(run(arguments.repeats, device))


if __name__ == "__main__":
    main()
