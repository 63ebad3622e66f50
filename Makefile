# keel: every target creates .venv and installs what it needs on first use.
# Only Python 3.11+ and make are needed beforehand.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
RUN    := $(VENV)/.runtime
STACK  ?= prod
# pytest workers (pytest-xdist): three on a 2-core machine, because many tests wait on a subprocess (the policy
# pack, git, keel itself) rather than a core: 1 min 50 s against 1 min 58 s with two. JOBS=0 runs everything in one
# process (to debug).
JOBS   ?= 3
# Byte-compile keel's own code (keel/, components/, policies/), as pip does for every package it installs: where
# PYTHONDONTWRITEBYTECODE is set (CI machines often set it), Python would otherwise compile it again on every run,
# 0.1-0.2 s of each preview. Only changed files are rewritten, and Python ignores a stale file.
COMPILE = $(BIN)/python -m compileall -q keel components policies

.PHONY: install preview test lint typecheck unit bench clean

# Two steps: what a preview needs (keel, the providers' SDKs, the policy pack's runtime), then the dev tools.
# `make preview` on a fresh clone waits only for the first.
$(RUN): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	$(COMPILE)
	touch $(RUN)

$(STAMP): $(RUN)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install keel with its dev tools

preview: $(RUN)  ## offline preview of a stack: make preview [STACK=dev]
	@$(COMPILE)
	$(BIN)/keel preview $(STACK)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	@$(COMPILE)
	$(BIN)/pytest -n $(JOBS)

test: lint typecheck unit  ## ruff, mypy and pytest

bench: $(STAMP)  ## time a cold `keel preview` against the SDK floor and a `keel watch` re-render (README: Speed)
	@$(COMPILE)
	$(BIN)/python -m keel.bench $(STACK)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
