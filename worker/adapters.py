"""LoRA adapters on a warm pipeline, through diffusers' PEFT integration, for one request at a time.

`LoraAdapters.applied(pipeline, loras)` loads what the request names that is not loaded yet
(`load_lora_weights(…, adapter_name=name)`), activates exactly those at their weights (`set_adapters`), and
disables every adapter when the request ends, even when it fails: the next request (or batch) renders with the
bare model. The most recently used adapters stay loaded, up to `AdapterSettings.max_loaded_loras` per model;
past that the least recently used are deleted. Adapters live in the model's modules, which the model's txt2img,
img2img and ControlNet pipelines share, so one set serves all of them.

Not thread-safe on its own: the backend calls it from the device's one thread (DeviceGuard).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from core.errors import InvalidRequest
from core.models.request import LoraRef
from core.settings import AdapterSettings, LoraSettings
from worker.registry import hub_offline

logger = logging.getLogger(__name__)


class LoraAdapters:
    """The LoRAs loaded into one model, least recently used first."""

    def __init__(self, settings: AdapterSettings) -> None:
        self.settings = settings
        self._loaded: OrderedDict[str, None] = OrderedDict()

    @property
    def loaded(self) -> list[str]:
        return list(self._loaded)

    @contextmanager
    def applied(self, pipeline: Any, loras: tuple[LoraRef, ...], request_id: str = "") -> Iterator[None]:
        """Inside the block, `pipeline` renders with exactly `loras` at their weights; after it, with none."""
        if not loras:
            yield  # every adapter was disabled when the request that used it ended
            return
        for ref in loras:
            self._ensure(pipeline, ref.name, request_id)
        self._evict(pipeline, keep={ref.name for ref in loras})
        try:
            pipeline.enable_lora()
            pipeline.set_adapters([ref.name for ref in loras], adapter_weights=[ref.weight for ref in loras])
            yield
        finally:
            pipeline.disable_lora()

    def _ensure(self, pipeline: Any, name: str, request_id: str) -> None:
        if name in self._loaded:
            self._loaded.move_to_end(name)
            return
        present = {adapter for adapters in pipeline.get_list_adapters().values() for adapter in adapters}
        if name in present:  # loaded by an earlier backend on the same warm model
            self._loaded[name] = None
            return
        lora = self.settings.loras.get(name)
        if lora is None:  # the bots' catalog and this worker's disagree
            raise InvalidRequest("lora", f"The LoRA “{name}” isn't set up on this generator.")
        source, options = _source(lora)
        try:
            pipeline.load_lora_weights(source, adapter_name=name, **options)
        except Exception as exc:
            logger.exception("request %s: LoRA %s could not be loaded from %s", request_id, name, lora.source)
            raise InvalidRequest(
                "lora",
                f"The LoRA “{name}” couldn't be loaded on this generator; please tell the bot's operator.",
            ) from exc
        self._loaded[name] = None
        logger.info("request %s: loaded LoRA %s from %s", request_id, name, lora.source)

    def _evict(self, pipeline: Any, keep: set[str]) -> None:
        while len(self._loaded) > self.settings.max_loaded_loras:
            oldest = next((name for name in self._loaded if name not in keep), None)
            if oldest is None:
                return
            pipeline.delete_adapters(oldest)
            del self._loaded[oldest]
            logger.info("unloaded LoRA %s (least recently used)", oldest)


def _source(lora: LoraSettings) -> tuple[str, dict[str, Any]]:
    """`load_lora_weights`' first argument and options: a local file as its folder and name, or a Hub repo."""
    path = Path(lora.source).expanduser()
    if path.is_file():
        return str(path.parent), {"weight_name": path.name}
    options: dict[str, Any] = {}
    if lora.weight_name:
        options["weight_name"] = lora.weight_name
    if hub_offline():
        options["local_files_only"] = True
    return lora.source, options
