# Everything a fresh machine with Python 3.11, pip and make needs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: demo test lint format bench lab clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@ $(VENV)/.installed

## demo: install, then replay the sample data through the three runners
demo: $(VENV)/.installed
	$(BIN)/workbench up --config configs/demo.toml

## test: install with dev extras, then run the whole suite (notebooks included)
test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check workbench runners tests benchmarks
	$(BIN)/ruff format --check workbench runners tests benchmarks

format: $(VENV)/.installed-dev
	$(BIN)/ruff format workbench runners tests benchmarks
	$(BIN)/ruff check --fix workbench runners tests benchmarks

## bench: print throughput and latency figures beside their baselines
bench: $(VENV)/.installed-dev
	$(BIN)/python benchmarks/run_all.py

## lab: open JupyterLab on the notebooks
lab: $(VENV)/.installed-dev
	$(BIN)/jupyter lab notebooks/

clean:
	rm -rf $(VENV) runs .pytest_cache .hypothesis
