"""The model a benchmark runs on: the tiny smoke-test model, or real-size SD 1.5 / SDXL with random weights.

`--model sd15|sdxl` builds the real architecture once under `--model-cache` (worker/random_weights.py: 2.1 GB
and 6.9 GB in float16) and hands the folder to the worker through `model_paths`, so the plain loop and imagebot
load the same weights, on the same device, in the same dtype (the worker's choice: float16 on CUDA, float32 on
a CPU). `--size` and `--steps` default to the model's own (tiny: 64×64, 2 steps; sd15: 512×512, 30; sdxl:
1024×1024, 30).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.models.catalog import ModelSpec, get_model

MODELS = ("tiny", "sd15", "sdxl")


@dataclass(frozen=True)
class Architecture:
    name: str  # catalog name
    folder: Path  # the diffusers folder both the plain loop and the worker load
    width: int
    height: int
    steps: int

    @property
    def spec(self) -> ModelSpec:
        return get_model(self.name)

    @property
    def flags(self) -> str:
        """What a prompt adds so imagebot renders the same work as the plain loop."""
        return f" --model {self.name} --size {self.width}x{self.height} --steps {self.steps}"

    def settings(self) -> dict[str, Any]:
        """Settings overrides: this model is the default, the worker's only one, loaded from `folder` with the
        folder's own VAE (the worker would fetch an fp16-safe one for SDXL; the random SDXL's decodes alike)."""
        worker = {"models": [self.name], "model_paths": {self.name: self.folder}, "vae": {self.name: "stock"}}
        return {"default_model": self.name, "worker": worker}

    def describe(self) -> str:
        kind = "random weights" if self.name == "tiny" else "real size, random weights"
        return f"{self.name} ({kind}) {self.width}×{self.height}, {self.steps} steps"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", choices=MODELS, default="tiny", help="the architecture to render with")
    parser.add_argument("--size", help="WIDTHxHEIGHT (default: the model's native size)")
    parser.add_argument("--steps", type=int, help="sampler steps (default: the model's)")
    parser.add_argument("--model-cache", type=Path, default=Path("imagebot-data/models"))


def work(args: argparse.Namespace) -> tuple[int, int, int]:
    """(width, height, steps) from --size and --steps, else the model's own."""
    spec = get_model(args.model)
    width, height = spec.native_width, spec.native_height
    if args.size:
        try:
            width, height = (int(side) for side in args.size.lower().split("x"))
        except ValueError:
            raise SystemExit(f"--size {args.size}: write it as WIDTHxHEIGHT, e.g. 512x512") from None
    return width, height, args.steps or spec.default_steps


def from_arguments(args: argparse.Namespace) -> Architecture:
    """The chosen architecture, built under --model-cache on first use (real size: a minute or two, once)."""
    from worker.random_weights import ensure_random_model
    from worker.tiny import ensure_tiny_model

    if args.model == "tiny":
        folder = ensure_tiny_model(args.model_cache)
    else:
        print(f"{args.model}: real size, random weights, float16 under {args.model_cache} (built once)")
        folder = ensure_random_model(args.model_cache, args.model)
    return Architecture(args.model, folder, *work(args))
