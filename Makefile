# Everything a fresh machine with Python 3.11, pip and make needs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# The tested version of every dependency; `make lock` refreshes it from pyproject.toml.
LOCK   := constraints.txt

.PHONY: demo test lint format bench lab lock clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml $(LOCK) | $(BIN)/python
	$(BIN)/pip install --quiet -c $(LOCK) -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml $(LOCK) | $(BIN)/python
	$(BIN)/pip install --quiet -c $(LOCK) -e ".[dev]"
	touch $@ $(VENV)/.installed

## demo: install, then replay the sample data through the three runners
demo: $(VENV)/.installed
	$(BIN)/workbench up --config configs/demo.toml

## test: install with dev extras, then run the whole suite (notebooks included).
## Unit and notebook tests share two workers; the integration tests, which start
## live pipelines, run after them, also on two workers, one file per worker at a
## time (most of their time is waiting on processes). Both parts always run;
## either failing fails.
test: $(VENV)/.installed-dev
	@status=0; \
	$(BIN)/python -m pytest -n 2 --dist loadfile tests/unit tests/notebooks || status=$$?; \
	$(BIN)/python -m pytest -n 2 --dist loadfile tests/integration || status=$$?; \
	exit $$status

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check workbench runners tests benchmarks tools
	$(BIN)/ruff format --check workbench runners tests benchmarks tools
	$(BIN)/mypy

format: $(VENV)/.installed-dev
	$(BIN)/ruff format workbench runners tests benchmarks tools
	$(BIN)/ruff check --fix workbench runners tests benchmarks tools

## bench: print throughput and latency figures beside their baselines
bench: $(VENV)/.installed-dev
	$(BIN)/python benchmarks/run_all.py

## lab: open JupyterLab on the notebooks
lab: $(VENV)/.installed-dev
	$(BIN)/jupyter lab notebooks/

## lock: re-resolve pyproject.toml (dev and notebooks extras included) to the newest
## releases and pin them in constraints.txt; run `make test` before committing it.
## Extra pip arguments go in LOCK_ARGS, e.g. LOCK_ARGS="-c tested-freeze.txt".
lock: | $(BIN)/python
	$(BIN)/python tools/lock.py --out $(LOCK) -- $(LOCK_ARGS)

clean:
	rm -rf $(VENV) runs .pytest_cache .hypothesis
