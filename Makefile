# The two commands: `make demo` and `make test`. Both build .venv from nothing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: demo test lint typecheck unit bench clean browser wrk

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Stamps depend on pyproject.toml, this file and the C extension's source and build hook,
# so a changed dependency list or a changed C core reinstalls (and recompiles).
BUILD_INPUTS := pyproject.toml Makefile hatch_build.py src/hindsight/drift/streaming/_adwin_core.c

$(VENV)/.demo-installed: $(BUILD_INPUTS) | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[serve]"
	touch $@

$(VENV)/.test-installed: $(BUILD_INPUTS) | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev,serve,postgres,mlflow,torch,lightning,transformers,keras,xgboost,lightgbm,gpu,dask,spark]"
	touch $@

# The demo ends by serving the dashboard on its ledger (Ctrl-C stops it); DEMO_ARGS= runs
# the journey alone.
DEMO_ARGS ?= --serve
demo: $(VENV)/.demo-installed
	$(BIN)/hindsight demo $(DEMO_ARGS)

lint: $(VENV)/.test-installed
	$(BIN)/ruff check src tests benchmarks examples

typecheck: $(VENV)/.test-installed
	$(BIN)/mypy

# Browser tests drive Debian's Chromium; install it where apt can (CI runs as root).
browser:
	@command -v chromium >/dev/null 2>&1 || { command -v apt-get >/dev/null 2>&1 && \
	  { apt-get install -y -q chromium >/dev/null 2>&1 || \
	    { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; }; }; } || \
	  echo "chromium is not installed: browser tests skip (and fail under CI=true)"

# The serving benchmark's smoke test drives wrk (Debian's package), like `browser` above.
wrk:
	@command -v wrk >/dev/null 2>&1 || { command -v apt-get >/dev/null 2>&1 && \
	  { apt-get install -y -q wrk >/dev/null 2>&1 || \
	    { apt-get update -q >/dev/null && apt-get install -y -q wrk >/dev/null; }; }; } || \
	  echo "wrk is not installed: the serving benchmark's smoke test skips"

unit: $(VENV)/.test-installed browser wrk
	$(BIN)/python -m pytest

test: lint typecheck unit

bench: $(VENV)/.test-installed
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) .hindsight .mypy_cache .ruff_cache .pytest_cache
