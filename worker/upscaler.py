"""A real upscaler: a super-resolution model of the ESRGAN family, loaded with spandrel, run in tiles.

UpscalerSettings.model names the weights: a local file, or a Hugging Face Hub path "owner/repo/filename"
fetched with hf_hub_download (into the standard HF cache; HF_HUB_OFFLINE=1 reads only the cache). spandrel
recognises the architecture from the weights alone (ESRGAN / Real-ESRGAN, 4x-UltraSharp, SwinIR, HAT, DAT…).

`Upscaler.upscale(image, factor)` returns exactly factor × the input. The model's own scale may differ: a model
smaller than the factor runs again on its output (a 2× model twice for 4×); one that overshoots (a 4× model for
2×) is brought down to the exact size with Pillow's Lanczos, which filters over the whole footprint of each output
pixel, so nothing aliases. Each pass runs in overlapping tiles (worker/tiling.py, crop join), so memory depends on
the tile size, not the image's.
"""

from __future__ import annotations

import logging
import pickle
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from core.errors import ConfigError
from core.settings import UpscalerSettings
from worker.device import DeviceName
from worker.registry import hub_offline
from worker.tiling import Mosaic, plan

log = logging.getLogger(__name__)

VARIABLE = "IMAGEBOT_UPSCALER__MODEL"
Check = Callable[[], None]  # raises to stop between tiles (a time limit, a cancelled job)


def weights_file(model: str) -> Path:
    """The local file for UpscalerSettings.model: the path itself, or "owner/repo/filename" from the Hub."""
    path = Path(model).expanduser()
    if path.is_file():
        return path
    parts = model.split("/")
    if path.is_absolute() or model.startswith(".") or len(parts) < 3 or not all(parts):
        raise ConfigError(
            f"{VARIABLE}={model!r}: no such file. Give the path of a .pth/.safetensors file, or a Hugging Face "
            'Hub path "owner/repo/filename".'
        )
    from huggingface_hub import hf_hub_download

    repo_id, filename = "/".join(parts[:2]), "/".join(parts[2:])
    try:
        return Path(hf_hub_download(repo_id, filename, local_files_only=hub_offline()))
    except Exception as exc:  # huggingface_hub's errors are OSErrors but one; any of them means "not here"
        raise ConfigError(
            f"{VARIABLE}={model!r}: {filename} could not be fetched from the Hub repo {repo_id} "
            f"({type(exc).__name__}). Check the name, the network (and HF_HUB_OFFLINE), or download the file "
            "and give its path."
        ) from exc


@dataclass(frozen=True)
class Upscaler:
    """A loaded super-resolution model and how to tile it."""

    descriptor: Any  # spandrel.ImageModelDescriptor (typed loosely: one architecture's module per model)
    name: str  # the weights' file name, shown in logs and image metadata
    tile: int
    overlap: int
    device: DeviceName

    @property
    def scale(self) -> int:
        return int(self.descriptor.scale)

    def upscale(self, image: Image.Image, factor: int, check: Check | None = None) -> Image.Image:
        """`image` at exactly factor × its size: the model as many times as it takes, then Lanczos down to it."""
        target = (image.width * factor, image.height * factor)
        current, reached = image.convert("RGB"), 1
        while reached < factor:
            current = self.super_resolve(current, check)
            reached *= self.scale
        if current.size != target:
            current = current.resize(target, Image.Resampling.LANCZOS)
        return current

    def super_resolve(self, image: Image.Image, check: Check | None = None) -> Image.Image:
        """One pass of the model (scale × the size), tile by tile."""
        import torch
        from spandrel import ModelTiling

        started = time.perf_counter()
        pixels = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
        whole = self.descriptor.tiling is ModelTiling.INTERNAL
        tile = max(image.size) if whole else self.tile
        tiles = plan(image.width, image.height, tile, 0 if whole else self.overlap)
        mosaic = Mosaic(image.width, image.height, 3, "crop", self.scale)
        for each in tiles:
            if check is not None:
                check()
            left, top, right, bottom = each.box
            patch = torch.from_numpy(np.ascontiguousarray(pixels[top:bottom, left:right].transpose(2, 0, 1)))
            patch = patch[None].to(self.device, self.descriptor.dtype)
            output = self.descriptor(patch)[0].float().cpu().numpy().transpose(1, 2, 0)
            mosaic.add(each, output)
        result = np.clip(mosaic.result() * 255.0 + 0.5, 0, 255).astype(np.uint8)
        log.debug(
            "%s: %dx%d → %dx%d in %d tile(s), %.2f s",
            self.name,
            image.width,
            image.height,
            result.shape[1],
            result.shape[0],
            len(tiles),
            time.perf_counter() - started,
        )
        return Image.fromarray(result, "RGB")


def load_upscaler(settings: UpscalerSettings, device: DeviceName) -> Upscaler | None:
    """The configured upscaler on `device` (half precision on CUDA where the architecture allows), or None when
    none is configured. ConfigError, naming the variable, for weights that are missing or not super-resolution."""
    if settings.model is None:
        return None
    import torch
    from spandrel import ImageModelDescriptor, ModelLoader, UnsupportedModelError

    path = weights_file(settings.model)
    started = time.perf_counter()
    try:
        descriptor = ModelLoader().load_from_file(path)
    except (
        UnsupportedModelError,
        ValueError,
        RuntimeError,
        OSError,
        KeyError,
        pickle.UnpicklingError,
    ) as exc:
        raise ConfigError(
            f"{VARIABLE}: {path.name} is not a model spandrel can load ({type(exc).__name__}: {exc})."
        ) from exc
    if not isinstance(descriptor, ImageModelDescriptor) or descriptor.purpose != "SR" or descriptor.scale < 2:
        raise ConfigError(
            f"{VARIABLE}: {path.name} is a {descriptor.architecture.name} model for "
            f"{descriptor.purpose} at scale {descriptor.scale}; an upscaler must be super-resolution (SR) at 2× "
            "or more, e.g. RealESRGAN_x4plus.pth."
        )
    if descriptor.input_channels != 3 or descriptor.output_channels != 3:
        raise ConfigError(f"{VARIABLE}: {path.name} is not an RGB model; choose an RGB upscaler.")
    dtype = torch.float32
    if device == "cuda" and descriptor.supports_half:
        dtype = torch.float16
    elif device == "cuda" and descriptor.supports_bfloat16:
        dtype = torch.bfloat16
    descriptor.to(device=device, dtype=dtype).eval()
    log.info(
        "loaded upscaler %s (%s, %d×) on %s (%s) in %.2f s",
        path.name,
        descriptor.architecture.name,
        descriptor.scale,
        device,
        str(dtype).removeprefix("torch."),
        time.perf_counter() - started,
    )
    return Upscaler(descriptor, path.name, settings.tile, settings.tile_overlap, device)
