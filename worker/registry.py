"""The models a diffusers worker keeps warm: loaded once, shared by every job, txt2img and img2img alike.

A catalog spec becomes a diffusers pipeline here and only here. The img2img pipeline is built with
`from_pipe`, so it shares the txt2img pipeline's weights: one copy in memory per model.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core import metrics
from core.errors import BackendUnavailable, InvalidRequest
from core.models.catalog import BackendKind, Family, ModelSpec, get_model
from core.settings import WorkerSettings
from worker.acceleration import accelerate, warm_up
from worker.device import DeviceName, DtypeName, detect_device, generator_device, pick_dtype, torch_dtype
from worker.tiny import ensure_tiny_model

logger = logging.getLogger(__name__)

_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class LoadedModel:
    spec: ModelSpec
    text2img: Any  # a diffusers DiffusionPipeline (typed loosely: diffusers ships no stubs)
    img2img: Any  # the same weights behind the family's img2img pipeline
    device: DeviceName
    dtype: DtypeName
    source: str  # the folder or Hugging Face repo it was loaded from
    load_seconds: float

    @property
    def generator_device(self) -> str:
        return generator_device(self.device)


def hub_offline() -> bool:
    """True when HF_HUB_OFFLINE asks for no network (read at call time, unlike huggingface_hub's constant)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE


def diffusers_spec(name: str) -> ModelSpec:
    """The catalog spec for a model a diffusers worker can render; OpenAI models are not ours to load."""
    spec = get_model(name)
    if spec.backend is not BackendKind.DIFFUSERS:
        raise InvalidRequest(
            "model",
            f"Model “{spec.name}” is served by the OpenAI backend, not by a local diffusers worker. "
            "Remove it from IMAGEBOT_WORKER__MODELS.",
        )
    return spec


def _pipeline_class(family: Family) -> Any:
    from diffusers import FluxPipeline, StableDiffusionPipeline, StableDiffusionXLPipeline

    classes: dict[Family, Any] = {
        Family.TINY: StableDiffusionPipeline,
        Family.SD15: StableDiffusionPipeline,
        Family.SD2: StableDiffusionPipeline,
        Family.SDXL: StableDiffusionXLPipeline,
        Family.FLUX: FluxPipeline,
    }
    return classes[family]


def _fetch_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean "the weights could not be fetched" (all of huggingface_hub's are OSErrors but one)."""
    import httpx
    from huggingface_hub.errors import EntryNotFoundError

    return (OSError, EntryNotFoundError, httpx.HTTPError)


class ModelRegistry:
    """Loads diffusers models by catalog name and keeps them warm; thread-safe, one copy per model."""

    def __init__(self, settings: WorkerSettings) -> None:
        self.settings = settings
        self.device: DeviceName = detect_device(settings)
        self._models: dict[str, LoadedModel] = {}
        self._lock = threading.Lock()
        _quiet_libraries()

    def loaded_models(self) -> list[str]:
        return list(self._models)

    def get(self, name: str) -> LoadedModel | None:
        """The loaded model for a name or alias, or None when it is not loaded yet."""
        return self._models.get(diffusers_spec(name).name)

    def load(self, name: str) -> LoadedModel:
        """Load a model once (blocking: call it from a thread in async code) and keep it warm."""
        spec = diffusers_spec(name)
        with self._lock:
            loaded = self._models.get(spec.name)
            if loaded is None:
                loaded = self._load(spec)
                self._models[spec.name] = loaded
                metrics.WARM_MODELS.labels(model=spec.name).set(1)
            return loaded

    def load_configured(self) -> list[str]:
        """Load every model in settings.models (the worker's start-up); returns their catalog names."""
        return [self.load(name).spec.name for name in self.settings.models]

    def close(self) -> None:
        """Drop every model and give the GPU memory back."""
        with self._lock:
            for name in self._models:
                metrics.WARM_MODELS.labels(model=name).set(0)
            self._models.clear()
        if self.device == "cuda":
            import torch

            torch.cuda.empty_cache()

    def _load(self, spec: ModelSpec) -> LoadedModel:
        from diffusers import AutoPipelineForImage2Image

        dtype = pick_dtype(self.settings.dtype, self.device, spec.family)
        started = time.perf_counter()
        source, options = self._source(spec)
        options["dtype"] = torch_dtype(dtype)
        if spec.family in (Family.TINY, Family.SD15, Family.SD2):
            options["safety_checker"] = None  # moderation/ checks every image; no black squares
            options["requires_safety_checker"] = False
        pipeline_class = _pipeline_class(spec.family)
        try:
            text2img = pipeline_class.from_pretrained(source, **options)
        except _fetch_errors() as exc:
            if spec.family is Family.TINY:
                raise BackendUnavailable(
                    f"The built-in model “tiny” could not be loaded from {source}: {exc}"
                ) from exc
            raise BackendUnavailable(
                f'Model "{spec.name}" ({spec.repo_id}) could not be fetched from the Hugging Face Hub. '
                "Check that this machine can reach huggingface.co (and that HF_HUB_OFFLINE is unset), "
                "set HF_TOKEN or run `hf auth login` if the model is gated (accept its licence on its Hub page "
                "first), or remove it from IMAGEBOT_WORKER__MODELS."
            ) from exc
        except (ValueError, RuntimeError, TypeError) as exc:
            raise BackendUnavailable(f"Model “{spec.name}” ({source}) could not be loaded: {exc}") from exc
        if not (self.settings.cpu_offload and self.device == "cuda"):
            text2img.to(self.device)
        text2img.set_progress_bar_config(disable=True)
        switches = accelerate(text2img, spec, self.settings, self.device)
        if self.settings.compile:
            logger.info("model %s: compiling in a warm-up render…", spec.name)
            logger.info("model %s: warm-up render took %.1f s", spec.name, warm_up(text2img, spec))
        img2img = AutoPipelineForImage2Image.from_pipe(text2img)
        img2img.set_progress_bar_config(disable=True)
        seconds = time.perf_counter() - started
        logger.info(
            "loaded model %s from %s on %s (%s) in %.2fs; %s",
            spec.name,
            source,
            self.device,
            dtype,
            seconds,
            ", ".join(switches) or "no speed switches",
        )
        return LoadedModel(spec, text2img, img2img, self.device, dtype, source, seconds)

    def _source(self, spec: ModelSpec) -> tuple[str, dict[str, Any]]:
        """Where the weights come from, and how to ask for them."""
        folder = self.settings.model_paths.get(spec.name)
        if folder is not None:
            if not (Path(folder) / "model_index.json").is_file():
                raise BackendUnavailable(
                    f"IMAGEBOT_WORKER__MODEL_PATHS gives {folder} for model “{spec.name}”, but that is not a "
                    "diffusers folder on this machine (no model_index.json in it). Fix the path, or remove "
                    f"“{spec.name}” from IMAGEBOT_WORKER__MODEL_PATHS to load it from {spec.repo_id}."
                )
            return str(folder), {}
        if spec.family is Family.TINY:
            return str(ensure_tiny_model(self.settings.model_cache_dir)), {}
        options: dict[str, Any] = {}
        if Path(spec.repo_id).is_dir():
            return spec.repo_id, options
        # Real weights go to the standard Hugging Face cache (HF_HOME), where users already keep them.
        if hub_offline():
            options["local_files_only"] = True
        return spec.repo_id, options


def _quiet_libraries() -> None:
    """No tqdm bars in a worker's log: one line per load and per job is what operators read."""
    import diffusers.utils.logging as diffusers_logging
    import transformers.utils.logging as transformers_logging

    diffusers_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()
