# One Makefile: every task the README names.
PY ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install lock demo test test-fast lint format bench clean

install: $(STAMP)

$(STAMP): pyproject.toml requirements.lock scripts/install.sh
	PY=$(PY) VENV=$(VENV) bash scripts/install.sh
	touch $(STAMP)

# After changing a dependency range in pyproject.toml (UPGRADE=--upgrade moves every pin).
lock: install
	VENV=$(VENV) bash scripts/lock.sh

demo: install
	$(BIN)/python scripts/demo.py

test: install
	bash scripts/test.sh

test-fast: install
	$(BIN)/python -m pytest -q -m "not slow and not integration"

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
