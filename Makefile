# Two commands do everything; each creates .venv and installs on first use.
#   make imagine PROMPT="a lighthouse at dusk --ar 16:9 --seed 7"   render offline with the built-in tiny model
#   make test                                                       lint, type-check, import rules, tests
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# torch and torchvision must be built for each other: PyPI's torchvision fails to import beside the 2.13.0 CPU
# wheel, so the pair is 2.14.1 / 0.29.1 (a CUDA build that runs on the CPU as well)
TORCH_VERSION ?= 2.14.1
TORCHVISION_VERSION ?= 0.29.1
WATERMARK_VERSION ?= 0.2.0
PROMPT ?= a lighthouse at dusk --ar 16:9 --seed 7

.PHONY: imagine test lint setup clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first, pinned, so nothing that depends on it pulls a multi-GB CUDA build on CPU-only machines
	$(BIN)/python -m pip install --quiet torch==$(TORCH_VERSION) torchvision==$(TORCHVISION_VERSION)
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	# the invisible watermark, without its GUI opencv-python requirement (the headless build is installed)
	$(BIN)/python -m pip install --quiet --no-deps invisible-watermark==$(WATERMARK_VERSION)
	touch $(STAMP)

setup: $(STAMP)

imagine: $(STAMP)
	$(BIN)/imagebot imagine "$(PROMPT)"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) imagebot-data .pytest_cache .mypy_cache .ruff_cache
