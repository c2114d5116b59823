# Diffusion Lab: `make up` runs the lab on this machine, `make test` runs the test suite.
# Both first set up a virtual environment in .venv (once; a stamp file makes repeats fast):
# pip upgraded, PyTorch (a CUDA build where an NVIDIA GPU answers, the CPU build otherwise),
# then this project with its dev extras, editable.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.difflab-installed
TORCH_VERSION ?= 2.13.0
# Extra pip arguments for the CPU build of torch, e.g. an index that serves CPU wheels.
TORCH_CPU_PIP_ARGS ?=
# Extra arguments: `make up UP_ARGS="--port 8600 --workers 2"`, `make test PYTEST_ARGS="-k up"`.
UP_ARGS ?=
PYTEST_ARGS ?=
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help install up test lint format clean

help:
	@echo "make up      set up $(VENV), migrate the database, start the lab on http://localhost:8501"
	@echo "make test    set up $(VENV) and run the whole test suite"
	@echo "make lint    ruff check and ruff format --check"
	@echo "make format  ruff format and ruff check --fix"
	@echo "make clean   remove $(VENV) and caches (keeps the data folder .difflab)"

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || { echo "creating $(VENV) with $(PYTHON)"; $(PYTHON) -m venv $(VENV); }
	$(BIN)/python -m pip install --quiet --upgrade pip
	@if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then \
	  echo "NVIDIA GPU found: installing a CUDA build of torch"; \
	  $(BIN)/python -m pip install --quiet "torch>=2.4,<2.15"; \
	else \
	  echo "no NVIDIA GPU: installing the CPU build of torch $(TORCH_VERSION)"; \
	  $(BIN)/python -m pip install --quiet "torch==$(TORCH_VERSION)" $(TORCH_CPU_PIP_ARGS); \
	fi
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@
	@echo "$(VENV) is ready"

up: $(STAMP)  ## `difflab up` migrates the database before it starts the workers
	exec $(BIN)/difflab up $(UP_ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest -p no:cacheprovider --durations=15 $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) build dist .pytest_cache .ruff_cache *.egg-info
	find . -name __pycache__ -type d -prune -not -path './.git/*' -exec rm -rf {} +
