"""The VAE a model decodes with: its own, or one the operator swaps in (an fp16-safe one for SDXL by default).

SDXL's stock VAE overflows in float16 (NaN, so black images); diffusers then upcasts it to float32 for every
decode (`force_upcast` in its config), which costs memory and time. `madebyollin/sdxl-vae-fp16-fix` is the same
decoder fine-tuned to stay in range, so SDXL models rendering in float16 use it unless the operator names
another in `WorkerSettings.vae` (by model name or family; "stock" keeps the model's own) or sets
`sdxl_fp16_vae` to None. `vae_force_upcast` overrides the chosen VAE's own `force_upcast` either way.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from core.errors import BackendUnavailable
from core.models.catalog import Family, ModelSpec
from core.settings import WorkerSettings
from core.settings.worker import for_model
from worker.device import DtypeName, torch_dtype

log = logging.getLogger(__name__)

STOCK = "stock"  # a `vae` value that keeps the model's own VAE (e.g. to undo the SDXL float16 default)


def vae_source(spec: ModelSpec, dtype: DtypeName, settings: WorkerSettings) -> str | None:
    """The repo or folder of the VAE `spec` should decode with in `dtype`; None: the model's own."""
    chosen = for_model(settings.vae, spec.name, spec.family.value)
    if chosen is None and spec.family is Family.SDXL and dtype == "float16":
        chosen = settings.sdxl_fp16_vae
    return None if chosen is None or chosen.strip().lower() == STOCK else chosen


def swapped_vae(
    spec: ModelSpec, dtype: DtypeName, settings: WorkerSettings, offline: bool
) -> tuple[Any, str | None]:
    """The VAE to load `spec` with (None: its own) and the start-up switch that says so. A VAE the operator named
    must load; the SDXL float16 default may be out of reach (offline, no cached copy): then the stock VAE serves,
    upcast to float32 as diffusers does for it, and a warning says how to get the fast one."""
    source = vae_source(spec, dtype, settings)
    if source is None:
        return None, None
    try:
        return load_vae(source, dtype, offline), f"vae {source}"
    except BackendUnavailable as exc:
        if for_model(settings.vae, spec.name, spec.family.value) is not None:
            raise
        log.warning(
            "model %s: the fp16-safe VAE %s could not be loaded (%s); the stock VAE decodes in float32 instead. "
            "Download it, or set IMAGEBOT_WORKER__SDXL_FP16_VAE to a folder holding it.",
            spec.name,
            source,
            exc.__cause__ or exc,
        )
        return None, "stock vae (fp16-safe one unavailable)"


def load_vae(source: str, dtype: DtypeName, offline: bool) -> Any:
    """An AutoencoderKL from a Hub repo, a folder holding one, or a pipeline folder with a vae/ subfolder."""
    from diffusers import AutoencoderKL

    options: dict[str, Any] = {"torch_dtype": torch_dtype(dtype)}
    folder = Path(source)
    if folder.is_dir() and (folder / "vae" / "config.json").is_file():
        options["subfolder"] = "vae"
    elif not folder.is_dir() and offline:
        options["local_files_only"] = True
    try:
        return AutoencoderKL.from_pretrained(source, **options)
    except Exception as exc:  # a missing folder, an unreachable or gated repo, a checkpoint of another shape
        raise BackendUnavailable(
            f"The VAE {source} could not be loaded ({type(exc).__name__}). Check the path or the Hub id in "
            "IMAGEBOT_WORKER__VAE (or IMAGEBOT_WORKER__SDXL_FP16_VAE), and that this machine can reach "
            "huggingface.co, or set it to “stock” to keep the model's own VAE."
        ) from exc


def apply_force_upcast(pipeline: Any, dtype: DtypeName, settings: WorkerSettings) -> str | None:
    """Set the pipeline VAE's `force_upcast` when the operator chose one; the switch to report (in float16,
    where it matters, or when set), if any."""
    vae = getattr(pipeline, "vae", None)
    if vae is None:
        return None
    if settings.vae_force_upcast is not None:
        vae.register_to_config(force_upcast=settings.vae_force_upcast)
    upcast = getattr(vae.config, "force_upcast", None)
    if upcast is None or (dtype != "float16" and settings.vae_force_upcast is None):
        return None
    return "vae force_upcast " + ("on" if upcast else "off")
