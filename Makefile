# Two commands set everything up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: run test lint install install-dev bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e .
	touch $@

$(DEV_STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP) $@

install: $(STAMP)
install-dev: $(DEV_STAMP)

run: $(STAMP)
	$(BIN)/mlxm serve --host 127.0.0.1 --port 10242

lint: $(DEV_STAMP)
	$(BIN)/lint-imports

test: $(DEV_STAMP)
	bash scripts/system-packages.sh
	$(BIN)/lint-imports
	$(BIN)/python -m pytest

bench: $(DEV_STAMP)
	$(BIN)/python bench/search.py
	$(BIN)/python bench/download.py
	$(BIN)/python bench/inference.py
	$(BIN)/python bench/connections.py
	$(BIN)/python bench/embeddings.py
	$(BIN)/python bench/vision_batching.py
	$(BIN)/python bench/cli.py
	$(BIN)/python bench/distributed.py

clean:
	rm -rf $(VENV)
