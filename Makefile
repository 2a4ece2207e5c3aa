# The two set-up commands of the README: `make demo` (the main job) and `make test` (what CI runs).
# Both create .venv and install what they need; torch is pinned first so nothing pulls a CUDA build.
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin

.PHONY: demo test install lint clean

$(BIN)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e ".[dev,diffusers,verifiers,cluster]"
	touch $@

install: $(BIN)/.installed

demo: $(BIN)/.installed
	$(BIN)/ttscale demo --out demo-out

lint: $(BIN)/.installed
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

# The HTML report's browser test drives Debian's chromium through chromedriver; install both when missing.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
/usr/bin/chromium /usr/bin/chromedriver:
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends chromium chromium-driver

test: lint /usr/bin/chromium /usr/bin/chromedriver
	$(BIN)/pytest -n 2 --durations=10

clean:
	rm -rf $(VENV) demo-out .pytest_cache .mypy_cache .ruff_cache
