"""The models a diffusers worker keeps warm: loaded once, shared by every job, txt2img and img2img alike.

A catalog spec becomes a diffusers pipeline here and only here. The img2img pipeline is built with
`from_pipe`, so it shares the txt2img pipeline's weights: one copy in memory per model.

Several models stay warm within `WorkerSettings.model_memory_budget_gb` (worker/memory.py measures them): a model
is read into host memory, measured, and before it moves to the device the least recently used warm models that no
running call holds (`using`) are evicted until it fits. A model that cannot fit (larger than the budget, or the
rest held) is refused with BackendUnavailable rather than waited for: the worker loads and renders on its one
device thread (worker.device.DeviceGuard), so the only model held while a load runs is the one that load is for,
and a wait could only end by someone else's load, which that thread would have to run. An evicted model is
still served: the next request for it loads it again (the worker's heartbeat lists every configured model).
"""

from __future__ import annotations

import gc
import logging
import os
import threading
import time
import weakref
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core import metrics
from core.errors import BackendUnavailable, InvalidRequest
from core.models.catalog import BackendKind, Family, ModelSpec, get_model
from core.settings import WorkerSettings
from worker.acceleration import accelerate, warm_up
from worker.device import DeviceName, DtypeName, detect_device, generator_device, pick_dtype, torch_dtype
from worker.memory import describe, evictions, footprint, total
from worker.tiny import ensure_tiny_model
from worker.vae import apply_force_upcast, swapped_vae

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
    memory: dict[str, int] = field(
        default_factory=dict, compare=False
    )  # bytes of its weights, by device type

    @property
    def memory_bytes(self) -> int:
        return total(self.memory)

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
    """Loads diffusers models by catalog name and keeps them warm within the memory budget, evicting the least
    recently used; thread-safe, one copy per model."""

    def __init__(self, settings: WorkerSettings) -> None:
        self.settings = settings
        self.device: DeviceName = detect_device(settings)
        self._models: OrderedDict[str, LoadedModel] = OrderedDict()  # least recently used first
        self._in_use: Counter[str] = Counter()
        self._evicted: list[Callable[[], Callable[[str], None] | None]] = []
        self._lock = threading.RLock()
        _quiet_libraries()

    def loaded_models(self) -> list[str]:
        """The warm models, least recently used first."""
        return list(self._models)

    def resident_bytes(self) -> int:
        """Bytes the warm models' weights take, on every device."""
        return sum(loaded.memory_bytes for loaded in self._models.values())

    def get(self, name: str) -> LoadedModel | None:
        """The loaded model for a name or alias, or None when it is not loaded (yet, or any more)."""
        return self._models.get(diffusers_spec(name).name)

    def load(self, name: str) -> LoadedModel:
        """The warm model, loaded first when it is not (blocking: call it from the device thread in async code),
        evicting least recently used ones to stay within the budget; it becomes the most recently used."""
        spec = diffusers_spec(name)
        with self._lock:
            loaded = self._models.get(spec.name)
            if loaded is None:
                loaded = self._load(spec)
                self._models[spec.name] = loaded
                _report_loaded(loaded)
            self._models.move_to_end(spec.name)
            return loaded

    @contextmanager
    def using(self, name: str) -> Iterator[LoadedModel]:
        """The model, loaded if needed and never evicted until the block ends: hold it around a model call."""
        spec = diffusers_spec(name)
        with self._lock:
            self._in_use[spec.name] += 1
        try:
            yield self.load(spec.name)
        finally:
            with self._lock:
                self._in_use[spec.name] -= 1
                if self._in_use[spec.name] <= 0:
                    del self._in_use[spec.name]

    def on_evict(self, callback: Callable[[str], None]) -> None:
        """Call `callback(name)` when a model is evicted, to drop what was built on it (a bound method is held
        weakly: a backend that is gone is not kept alive, nor called)."""
        if hasattr(callback, "__self__"):
            self._evicted.append(weakref.WeakMethod(callback))
        else:
            self._evicted.append(lambda: callback)

    def load_configured(self) -> list[str]:
        """Load every model in settings.models (the worker's start-up, so a broken one fails it); returns their
        catalog names. The last listed is loaded first, so under a budget the first listed stay warm."""
        names = [diffusers_spec(name).name for name in self.settings.models]
        for name in reversed(names):
            self.load(name)
        return names

    def close(self) -> None:
        """Drop every model and give the GPU memory back."""
        with self._lock:
            for name in list(self._models):
                self._drop(name)
        self._free_memory()

    def _make_room(self, spec: ModelSpec, needed: int) -> None:
        """Evict least recently used models not in use until `needed` more bytes fit in the budget."""
        budget = self.settings.model_memory_budget_bytes
        resident = [(name, loaded.memory_bytes) for name, loaded in self._models.items()]
        chosen = evictions(resident, self._in_use, needed, budget)
        if chosen is None:
            held = [name for name in self._models if name in self._in_use]
            reason = (
                f"is larger than the whole budget ({describe(budget)})"
                if needed > budget
                else f"does not fit beside the models in use ({', '.join(held)}) in the {describe(budget)} budget"
            )
            raise BackendUnavailable(
                f"Model “{spec.name}” ({describe(needed)}) {reason}. Raise "
                "IMAGEBOT_WORKER__MODEL_MEMORY_BUDGET_GB, or serve fewer models on this worker."
            )
        for name in chosen:
            size = self._models[name].memory_bytes
            self._drop(name)
            metrics.MODEL_EVICTIONS.labels(model=name).inc()
            logger.info(
                "evicted model %s (%s, least recently used) to make room for %s (%s) within the %s budget",
                name,
                describe(size),
                spec.name,
                describe(needed),
                describe(budget),
            )
        if chosen:
            self._free_memory()

    def _drop(self, name: str) -> None:
        loaded = self._models.pop(name)
        metrics.WARM_MODELS.labels(model=name).set(0)
        for device in loaded.memory:
            metrics.MODEL_MEMORY_BYTES.labels(model=name, device=device).set(0)
        for reference in self._evicted:
            callback = reference()
            if callback is not None:
                callback(name)

    def _free_memory(self) -> None:
        gc.collect()  # pipelines hold reference cycles: free their tensors now, not at the next collection
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
        vae, vae_switch = swapped_vae(spec, dtype, self.settings, hub_offline())
        if vae is not None:
            options["vae"] = vae
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
        self._make_room(spec, total(footprint(text2img)))  # measured in host memory, before it moves
        if not (self.settings.cpu_offload and self.device == "cuda"):
            text2img.to(self.device)
        text2img.set_progress_bar_config(disable=True)
        upcast = apply_force_upcast(text2img, dtype, self.settings)
        switches = [switch for switch in (vae_switch, upcast) if switch]
        switches += accelerate(text2img, spec, self.settings, self.device)
        if self.settings.compile:
            logger.info("model %s: compiling in a warm-up render…", spec.name)
            logger.info("model %s: warm-up render took %.1f s", spec.name, warm_up(text2img, spec))
        img2img = AutoPipelineForImage2Image.from_pipe(text2img)
        img2img.set_progress_bar_config(disable=True)
        seconds = time.perf_counter() - started
        memory = footprint(text2img)
        logger.info(
            "loaded model %s from %s on %s (%s) in %.2fs, %s (%s); %s",
            spec.name,
            source,
            self.device,
            dtype,
            seconds,
            describe(total(memory)),
            ", ".join(f"{device} {describe(size)}" for device, size in sorted(memory.items())),
            ", ".join(switches) or "no speed switches",
        )
        return LoadedModel(spec, text2img, img2img, self.device, dtype, source, seconds, memory)

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


def _report_loaded(loaded: LoadedModel) -> None:
    name = loaded.spec.name
    metrics.WARM_MODELS.labels(model=name).set(1)
    metrics.MODEL_LOADS.labels(model=name).inc()
    for device, size in loaded.memory.items():
        metrics.MODEL_MEMORY_BYTES.labels(model=name, device=device).set(size)


def _quiet_libraries() -> None:
    """No tqdm bars in a worker's log: one line per load and per job is what operators read."""
    import diffusers.utils.logging as diffusers_logging
    import transformers.utils.logging as transformers_logging

    diffusers_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()
