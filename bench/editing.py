"""The edit modes next to a plain generation of the same output size, side by side in one run.

    .venv/bin/python -m bench.editing [--repeats 3]

For each mode — inpaint, outpaint zoom out 2×, pan right 50%, upscale subtle 2× and 4×, upscale creative 2× —
it times imagebot's DiffusersBackend doing the edit (validation, pipeline, paste-back, tiles), and the plain
diffusers text-to-image loop making one image of the same output size with the same steps, and prints both
and their ratio. Inpaint and zoom also show diffusers' inpaint pipeline called alone on the same input, so the
cost of imagebot's own work around it (re-fit, paste-back) is visible. Median of --repeats runs after a warm-up.

Defaults need no download: the tiny random-weight model, and a random ESRGAN (8 filters, 1 block, 4×) saved to
a .pth and loaded as real weights are. Point it at real ones with:

    IMAGEBOT_BENCH_MODEL=sd15                 a catalog model (weights from the Hugging Face cache / Hub)
    IMAGEBOT_BENCH_UPSCALER=/path/x4plus.pth  an upscaler file or Hub path, as IMAGEBOT_UPSCALER__MODEL
    IMAGEBOT_BENCH_UPSCALER=realsize          Real-ESRGAN x4plus's architecture (64 filters, 23 blocks), random
    IMAGEBOT_BENCH_DEVICE=cuda                the device (default: auto)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

from PIL import Image, ImageDraw

from core.commands.canvas import outpaint_placement
from core.models.catalog import ModelSpec, get_model
from core.models.request import Canvas, GenerationRequest, Mode, Requester
from core.settings import UpscalerSettings, WorkerSettings
from worker.diffusers_backend import DiffusersBackend
from worker.inpaint import attach_mask, inpaint_arguments
from worker.outpaint import place
from worker.registry import LoadedModel, ModelRegistry

BENCH = Requester(platform="cli", user_id="bench", chat_id="bench")


def save_esrgan(folder: Path, real_size: bool) -> Path:
    import torch
    from spandrel.architectures.ESRGAN import ESRGAN

    torch.manual_seed(0)
    filters, blocks = (64, 23) if real_size else (8, 1)
    model = ESRGAN(in_nc=3, out_nc=3, num_filters=filters, num_blocks=blocks, scale=4)
    path = folder / f"esrgan-{filters}nf-{blocks}b-x4.pth"
    torch.save(model.state_dict(), path)
    return path


def source_image(width: int, height: int) -> Image.Image:
    image = Image.new("RGB", (width, height), (70, 110, 160))
    draw = ImageDraw.Draw(image)
    draw.ellipse((width // 4, height // 4, 3 * width // 4, 3 * height // 4), fill=(220, 170, 60))
    return image


def request(spec: ModelSpec, mode: Mode, size: tuple[int, int], **fields: object) -> GenerationRequest:
    values: dict[str, Any] = {
        "request_id": "bench",
        "prompt": "a lighthouse at dusk",
        "width": size[0],
        "height": size[1],
        "steps": spec.default_steps,
        "guidance": spec.default_guidance,
        "seeds": (1,),
        "model": spec.name,
        "mode": mode,
        "requester": BENCH,
    }
    if mode is not Mode.TXT2IMG:
        values["source_image"] = "bench/source.png"
    values.update(fields)
    return GenerationRequest(**values)


async def timed(call: Callable[[], Awaitable[object]], repeats: int) -> float:
    await call()  # warm-up: pipelines built, caches filled
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        await call()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


def plain_txt2img(loaded: LoadedModel, size: tuple[int, int]) -> Callable[[], Awaitable[object]]:
    """diffusers alone: one text-to-image call at `size` with the model's default steps."""
    import torch

    spec = loaded.spec

    async def call() -> object:
        def run() -> object:
            with torch.inference_mode():
                return loaded.text2img(
                    "a lighthouse at dusk",
                    width=size[0],
                    height=size[1],
                    num_inference_steps=spec.default_steps,
                    guidance_scale=spec.default_guidance,
                    generator=torch.Generator(loaded.generator_device).manual_seed(1),
                ).images

        return await asyncio.to_thread(run)

    return call


def plain_inpaint(
    backend: DiffusersBackend,
    loaded: LoadedModel,
    edit: GenerationRequest,
    image: Image.Image,
    mask: Image.Image,
) -> Callable[[], Awaitable[object]]:
    """diffusers' inpaint pipeline alone, on the same input at the same render size, without the paste-back."""
    import torch

    pipeline = backend.editor.inpainters.get(loaded)
    arguments = inpaint_arguments(loaded, edit, image, mask)

    async def call() -> object:
        def run() -> object:
            with torch.inference_mode():
                generator = torch.Generator(loaded.generator_device).manual_seed(1)
                return pipeline(**arguments, generator=[generator]).images

        return await asyncio.to_thread(run)

    return call


Call = Callable[[], Awaitable[object]]


@dataclass(frozen=True)
class Row:
    name: str
    size: tuple[int, int]
    edit: Call  # imagebot's backend doing the edit
    alone: Call | None = None  # diffusers' inpaint pipeline alone on the same input


def rows(backend: DiffusersBackend, plain: DiffusersBackend, loaded: LoadedModel) -> list[Row]:
    """Every edit mode on a native-size source, with the requests the chat side would send."""
    spec = loaded.spec
    native = (spec.native_width, spec.native_height)
    source = source_image(*native)
    mask = Image.new("L", native, 0)
    mask.paste(255, (native[0] // 4, native[1] // 4, 3 * native[0] // 4, 3 * native[1] // 4))
    zoom, pan = Canvas(zoom=2.0), Canvas(pan="right", pan_fraction=0.5)
    pan_size = outpaint_placement(spec, *native, pan).size
    double, quadruple = (native[0] * 2, native[1] * 2), (native[0] * 4, native[1] * 4)
    zoom_canvas, zoom_mask = place(source, outpaint_placement(spec, *native, zoom))
    inpaint = request(spec, Mode.INPAINT, native, mask_image="bench/mask.png", strength=1.0)
    zoomed = request(spec, Mode.OUTPAINT, native, canvas=zoom, strength=1.0)

    def edit(on: DiffusersBackend, mode: Mode, size: tuple[int, int], **fields: object) -> Call:
        made = request(spec, mode, size, **fields)
        return lambda: on.generate(made, source)

    return [
        Row(
            "inpaint (centre ¼)",
            native,
            lambda: backend.generate(inpaint, attach_mask(source, mask)),
            plain_inpaint(backend, loaded, inpaint, source, mask),
        ),
        Row(
            "outpaint zoom out 2×",
            native,
            lambda: backend.generate(zoomed, source),
            plain_inpaint(backend, loaded, zoomed, zoom_canvas, zoom_mask),
        ),
        Row(
            "outpaint pan right 50%",
            pan_size,
            edit(backend, Mode.OUTPAINT, pan_size, canvas=pan, strength=1.0),
        ),
        Row(
            "upscale subtle 2× (ESRGAN)", double, edit(backend, Mode.UPSCALE_SUBTLE, double, upscale_factor=2)
        ),
        Row(
            "upscale subtle 4× (ESRGAN)",
            quadruple,
            edit(backend, Mode.UPSCALE_SUBTLE, quadruple, upscale_factor=4),
        ),
        Row(
            "upscale creative 2× (ESRGAN + detail)",
            double,
            edit(backend, Mode.UPSCALE_CREATIVE, double, upscale_factor=2, strength=0.35),
        ),
        Row(
            "upscale subtle 2× (no upscaler: resize + light pass)",
            double,
            edit(plain, Mode.UPSCALE_SUBTLE, double, upscale_factor=2),
        ),
    ]


async def bench(repeats: int) -> None:
    spec = get_model(os.environ.get("IMAGEBOT_BENCH_MODEL", "tiny"))
    device = os.environ.get("IMAGEBOT_BENCH_DEVICE", "auto")
    with tempfile.TemporaryDirectory() as folder:
        upscaler_model = os.environ.get("IMAGEBOT_BENCH_UPSCALER", "tiny")
        if upscaler_model in ("tiny", "realsize"):
            upscaler_model = str(save_esrgan(Path(folder), upscaler_model == "realsize"))
        worker = WorkerSettings.model_validate({"model_cache_dir": Path(folder) / "models", "device": device})
        registry = ModelRegistry(worker)
        loaded = registry.load(spec.name)
        backend = DiffusersBackend(
            registry, time_limit_s=3600, upscaler=UpscalerSettings(model=upscaler_model)
        )
        plain = DiffusersBackend(registry, time_limit_s=3600)  # no upscaler: the resize fallback
        assert backend.editor.upscaler is not None
        print(
            f"model {spec.name} on {registry.device}, {spec.default_steps} steps; upscaler "
            f"{backend.editor.upscaler.name}; median of {repeats} after a warm-up"
        )
        print(
            f"{'mode':54} {'output':>10} {'edit s':>8} {'txt2img s':>10} {'ratio':>6} {'diffusers inpaint s':>20}"
        )
        plain_seconds: dict[tuple[int, int], float] = {}
        for row in rows(backend, plain, loaded):
            if row.size not in plain_seconds:
                plain_seconds[row.size] = await timed(plain_txt2img(loaded, row.size), repeats)
            seconds, base = await timed(row.edit, repeats), plain_seconds[row.size]
            alone = f"{await timed(row.alone, repeats):.3f}" if row.alone is not None else "-"
            output = f"{row.size[0]:>4}×{row.size[1]:<5}"
            print(f"{row.name:54} {output} {seconds:8.3f} {base:10.3f} {seconds / base:6.2f} {alone:>20}")
        registry.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=3)
    arguments = parser.parse_args()
    asyncio.run(bench(arguments.repeats))


if __name__ == "__main__":
    main()
