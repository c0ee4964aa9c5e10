"""Where models run and in which precision, from WorkerSettings.device and .dtype.

The choices are pure functions of the settings and of what the machine has, so they are tested without one;
`detect_device` and `torch_dtype` are the two thin calls into torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from core.errors import ConfigError
from core.models.catalog import Family
from core.settings import WorkerSettings

if TYPE_CHECKING:
    import torch

DeviceName = Literal["cpu", "cuda", "mps"]
DtypeName = Literal["float16", "bfloat16", "float32"]


def pick_device(requested: str, cuda_available: bool, mps_available: bool) -> DeviceName:
    """Auto → cuda, else mps, else cpu; an explicit device the machine lacks is a configuration error."""
    if requested == "auto":
        if cuda_available:
            return "cuda"
        return "mps" if mps_available else "cpu"
    if requested == "cpu":
        return "cpu"
    if requested == "cuda":
        if not cuda_available:
            raise ConfigError(
                "IMAGEBOT_WORKER__DEVICE is 'cuda' but torch sees no CUDA GPU. Install a CUDA build of torch, "
                "check the driver with nvidia-smi, or set IMAGEBOT_WORKER__DEVICE=auto."
            )
        return "cuda"
    if requested == "mps":
        if not mps_available:
            raise ConfigError(
                "IMAGEBOT_WORKER__DEVICE is 'mps' but this machine has no Apple GPU available to torch. "
                "Set IMAGEBOT_WORKER__DEVICE=auto."
            )
        return "mps"
    raise ConfigError(f"IMAGEBOT_WORKER__DEVICE: unknown device {requested!r}; use auto, cpu, cuda or mps.")


def pick_dtype(requested: str, device: DeviceName, family: Family) -> DtypeName:
    """Auto → half precision on CUDA (bfloat16 for FLUX, which overflows in float16), float32 elsewhere."""
    if requested == "auto":
        if device == "cuda":
            return "bfloat16" if family is Family.FLUX else "float16"
        return "float32"
    if requested in ("float16", "bfloat16", "float32"):
        return requested  # type: ignore[return-value]
    raise ConfigError(
        f"IMAGEBOT_WORKER__DTYPE: unknown dtype {requested!r}; use auto, float16, bfloat16 or float32."
    )


def generator_device(device: DeviceName) -> str:
    """Where seeded generators live: on the GPU for CUDA, on the CPU for mps (whose generators are not seedable
    reproducibly) and cpu."""
    return "cuda" if device == "cuda" else "cpu"


def detect_device(settings: WorkerSettings) -> DeviceName:
    """The device this worker renders on, asking torch what the machine has."""
    import torch

    mps = getattr(torch.backends, "mps", None)
    mps_available = bool(mps is not None and mps.is_available())
    return pick_device(settings.device, torch.cuda.is_available(), mps_available)


def torch_dtype(name: DtypeName) -> torch.dtype:
    import torch

    dtypes: dict[str, torch.dtype] = {
        "float16": torch.float16,
        "bfloat16": torch.bfloat16,
        "float32": torch.float32,
    }
    return dtypes[name]
