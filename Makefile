# The two commands: `make demo` and `make test`. Both build .venv from nothing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: demo test lint typecheck unit bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Stamps depend on pyproject.toml and this file, so a changed dependency list reinstalls.
$(VENV)/.demo-installed: pyproject.toml Makefile | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.test-installed: pyproject.toml Makefile | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev,postgres,mlflow,torch,lightning,transformers,keras,xgboost,lightgbm,gpu,dask,spark]"
	touch $@

demo: $(VENV)/.demo-installed
	$(BIN)/hindsight demo

lint: $(VENV)/.test-installed
	$(BIN)/ruff check src tests benchmarks

typecheck: $(VENV)/.test-installed
	$(BIN)/mypy

unit: $(VENV)/.test-installed
	$(BIN)/python -m pytest

test: lint typecheck unit

bench: $(VENV)/.test-installed
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) .hindsight .mypy_cache .ruff_cache .pytest_cache
