"""`imagebot imagine` as a user runs it: a subprocess, embedded Redis, in-process worker, local files."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]


def imagebot(
    tmp_path: Path, model_dir: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith(("IMAGEBOT_", "OPENAI_"))
    }
    environment |= {"IMAGEBOT_WORKER__MODEL_CACHE_DIR": str(model_dir), "PYTHONPATH": str(ROOT)} | (env or {})
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


@pytest.fixture
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.getbasetemp() / "models"


def test_imagine_renders_offline_and_the_second_run_comes_from_the_cache(
    tmp_path: Path, model_dir: Path
) -> None:
    first = imagebot(tmp_path, model_dir, "imagine", "a lighthouse at dusk --ar 16:9 --seed 7")
    assert first.returncode == 0, first.stderr
    assert "done: 4 image(s) with tiny" in first.stdout
    assert "smoke-test model" in first.stdout
    assert "16:9 became 88x48" in first.stderr
    paths = re.findall(r"image \d: 88x48 seed (\d+)  (\S+\.png)", first.stdout)
    assert [seed for seed, _ in paths] == ["7", "8", "9", "10"]
    for _, path in paths:
        assert Path(path).is_relative_to(tmp_path / "imagebot-data" / "storage")
        with Image.open(path) as image:
            assert image.size == (88, 48)

    second = imagebot(tmp_path, model_dir, "imagine", "a lighthouse at dusk --ar 16:9 --seed 7")
    assert second.returncode == 0, second.stderr
    assert "(from cache)" in second.stdout
    assert re.findall(r"\S+\.png", second.stdout)[:4] == [path for _, path in paths]


def test_a_bad_flag_is_explained_before_anything_starts(tmp_path: Path, model_dir: Path) -> None:
    result = imagebot(tmp_path, model_dir, "imagine", "a boat --steps 900")
    assert result.returncode == 2
    assert "--steps must be a whole number from 1 to 50 for tiny (you wrote 900)" in result.stderr
    assert "starting the worker" not in result.stderr
    assert not (tmp_path / "imagebot-data").exists()


def test_a_bad_setting_names_its_variable(tmp_path: Path, model_dir: Path) -> None:
    result = imagebot(tmp_path, model_dir, "imagine", "a boat", env={"IMAGEBOT_WORKER__MAX_JOBS": "lots"})
    assert result.returncode == 2
    assert "IMAGEBOT_WORKER__MAX_JOBS" in result.stderr and "Traceback" not in result.stderr
