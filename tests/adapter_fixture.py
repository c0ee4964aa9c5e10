"""A tiny LoRA and a tiny ControlNet for the tiny model, built once per session, and settings that name them.

Import the fixtures into a test module: `from tests.adapter_fixture import adapter_settings, tiny_controlnet_dir,
tiny_lora_files  # noqa: F401`. They are saved to files and loaded through the same paths as real weights.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from core.settings import AdapterSettings
from worker.tiny import ensure_tiny_model
from worker.tiny_adapters import build_tiny_controlnet, build_tiny_lora

LORA_TRIGGER = "pixel"


@pytest.fixture(scope="session")
def tiny_lora_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two different random LoRAs for the tiny model: "glow" and "grain"."""
    model = ensure_tiny_model(tmp_path_factory.getbasetemp() / "models")
    root = tmp_path_factory.mktemp("loras")
    return {
        "glow": build_tiny_lora(model, root / "glow", seed=1),
        "grain": build_tiny_lora(model, root / "grain", seed=2),
    }


@pytest.fixture(scope="session")
def tiny_controlnet_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    model = ensure_tiny_model(tmp_path_factory.getbasetemp() / "models")
    return build_tiny_controlnet(model, tmp_path_factory.mktemp("controlnet") / "canny")


@pytest.fixture(scope="session")
def adapter_settings(tiny_lora_files: dict[str, Path], tiny_controlnet_dir: Path) -> AdapterSettings:
    """The catalog: both LoRAs for tiny ("glow" with a trigger word), one for sdxl, and canny/scribble for tiny."""
    return AdapterSettings.model_validate(
        {
            "loras": {
                "glow": {"source": str(tiny_lora_files["glow"]), "family": "tiny", "trigger": LORA_TRIGGER},
                "grain": {"source": str(tiny_lora_files["grain"]), "family": "tiny", "weight": 0.8},
                "xl-only": {"source": "someone/xl-lora", "family": "sdxl", "description": "for SDXL"},
            },
            "control": {
                "models": {"tiny": {"canny": str(tiny_controlnet_dir), "scribble": str(tiny_controlnet_dir)}}
            },
        }
    )
