"""What happens to pixels after a backend: PNG with generation metadata, grids, chat-sized previews, upscaling.

Pure PIL (no torch), deterministic: the same image and parameters always give the same bytes, which keeps
storage keys content-addressed and results cacheable.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Literal

from PIL import Image, PngImagePlugin

from core.models.request import GenerationRequest

PNG_COMPRESS_LEVEL = 6
# Telegram refuses photos over 10 MB or with width + height over 10000; Discord's default upload limit is 10 MiB.
PREVIEW_MAX_BYTES = 9_500_000
PREVIEW_MAX_SIDE_SUM = 10_000
PREVIEW_QUALITIES = (90, 82, 74, 66, 58, 50)
A1111_KEY = "parameters"

PreviewFormat = Literal["jpeg", "webp"]


def generation_parameters(request: GenerationRequest, seed: int, model: str, backend: str) -> dict[str, str]:
    """The metadata stored with one image: enough to render it again."""
    parameters = {
        "prompt": request.prompt,
        "negative_prompt": request.negative_prompt,
        "steps": str(request.steps),
        "guidance": f"{request.guidance:g}",
        "seed": str(seed),
        "model": model,
        "backend": backend,
        "mode": request.mode.value,
    }
    if request.strength is not None:
        parameters["strength"] = f"{request.strength:g}"
    if request.upscale_factor is not None:
        parameters["upscale_factor"] = str(request.upscale_factor)
    if request.canvas is not None and request.canvas.pan is not None:
        parameters["pan"] = f"{request.canvas.pan} {request.canvas.pan_fraction:g}"
    elif request.canvas is not None:
        parameters["zoom"] = f"{request.canvas.zoom:g}"
    return parameters


def a1111_text(parameters: Mapping[str, str], size: tuple[int, int]) -> str:
    """The "parameters" text AUTOMATIC1111 writes, which many image viewers and tools read."""
    lines = [parameters.get("prompt", "")]
    if parameters.get("negative_prompt"):
        lines.append(f"Negative prompt: {parameters['negative_prompt']}")
    fields = [
        ("Steps", parameters.get("steps")),
        ("CFG scale", parameters.get("guidance")),
        ("Seed", parameters.get("seed")),
        ("Size", f"{size[0]}x{size[1]}"),
        ("Model", parameters.get("model")),
        ("Denoising strength", parameters.get("strength")),
    ]
    lines.append(", ".join(f"{name}: {value}" for name, value in fields if value))
    return "\n".join(lines)


def encode_png(image: Image.Image, parameters: Mapping[str, str]) -> bytes:
    """PNG bytes with each parameter as a text chunk (tEXt, or iTXt when not Latin-1) plus an A1111 "parameters"."""
    info = PngImagePlugin.PngInfo()
    for key, value in parameters.items():
        if key != A1111_KEY:
            info.add_text(key, value)
    info.add_text(A1111_KEY, parameters.get(A1111_KEY) or a1111_text(parameters, image.size))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info, compress_level=PNG_COMPRESS_LEVEL)
    return buffer.getvalue()


def read_png_parameters(data: bytes) -> dict[str, str]:
    """The text chunks of a PNG (what encode_png wrote), as a dict."""
    with Image.open(io.BytesIO(data)) as image:
        if image.format != "PNG":
            raise ValueError(f"expected a PNG image, got {image.format}")
        image.load()  # text chunks after the image data are read only with it
        text: dict[str, str] = dict(getattr(image, "text", {}))
    return {key: str(value) for key, value in text.items()}


def grid_shape(count: int) -> tuple[int, int]:
    """(columns, rows) of the grid for count images: 1→1×1, 2→2×1, 3 and 4→2×2."""
    if not 1 <= count <= 4:
        raise ValueError(f"a grid holds 1 to 4 images, not {count}")
    return {1: (1, 1), 2: (2, 1), 3: (2, 2), 4: (2, 2)}[count]


def make_grid(images: Sequence[Image.Image]) -> Image.Image:
    """The images side by side, row by row, in order; a missing fourth cell stays black."""
    columns, rows = grid_shape(len(images))
    if len(images) == 1:
        return images[0]
    width = max(image.width for image in images)
    height = max(image.height for image in images)
    grid = Image.new("RGB", (columns * width, rows * height))
    for index, image in enumerate(images):
        grid.paste(image.convert("RGB"), ((index % columns) * width, (index // columns) * height))
    return grid


def preview_size(size: tuple[int, int], max_side: int) -> tuple[int, int]:
    """The largest size with the same aspect ratio whose longer side ≤ max_side and width + height ≤ 10000."""
    width, height = size
    scale = min(1.0, max_side / max(width, height), PREVIEW_MAX_SIDE_SUM / (width + height))
    return max(1, int(width * scale)), max(1, int(height * scale))


def make_preview(
    image: Image.Image, max_side: int, fmt: PreviewFormat = "jpeg", max_bytes: int = PREVIEW_MAX_BYTES
) -> bytes:
    """A JPEG or WebP that chat platforms accept: downscaled (Lanczos), then lower quality until ≤ max_bytes."""
    if fmt not in ("jpeg", "webp"):
        raise ValueError(f"preview format must be 'jpeg' or 'webp', not {fmt!r}")
    current = image.convert("RGB")
    size = preview_size(current.size, max_side)
    while True:
        if size != current.size:
            current = current.resize(size, Image.Resampling.LANCZOS)
        for quality in PREVIEW_QUALITIES:
            data = _encode_lossy(current, fmt, quality)
            if len(data) <= max_bytes:
                return data
        if max(size) <= 1:
            raise ValueError(f"cannot fit a preview into {max_bytes} bytes")
        size = max(1, int(size[0] * 0.75)), max(1, int(size[1] * 0.75))


def _encode_lossy(image: Image.Image, fmt: PreviewFormat, quality: int) -> bytes:
    buffer = io.BytesIO()
    if fmt == "jpeg":
        image.save(buffer, format="JPEG", quality=quality, optimize=True)
    else:
        image.save(buffer, format="WEBP", quality=quality, method=4)
    return buffer.getvalue()


def upscale_lanczos(image: Image.Image, factor: float) -> Image.Image:
    """The image enlarged by factor with Lanczos (the start of an upscale, before img2img refines it)."""
    if factor <= 0:
        raise ValueError(f"the upscale factor must be positive, not {factor}")
    size = max(1, round(image.width * factor)), max(1, round(image.height * factor))
    return image.resize(size, Image.Resampling.LANCZOS)
