# The single entry point. `make demo` and `make test` work on a fresh machine with only
# Python 3.11, Node 20 and the package registries: they set up .venv and node_modules first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: setup demo test lint synth deploy bench clean

# Stamp files make setup incremental: reinstall only when a pin file changes.
$(BIN)/.installed: requirements.txt requirements-dev.txt functions/requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

setup: $(BIN)/.installed node_modules/.installed

demo: setup
	$(BIN)/fleetctl demo --out out/demo

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: setup lint
	$(BIN)/python -m pytest -q

synth: setup
	npx cdk synth --quiet

# Needs credentials for the central account; see docs/operations.md.
deploy: setup
	npx cdk deploy --all --require-approval broadening

# Not part of `make test`: figures, not pass/fail (docs/benchmarks.md).
bench: setup
	$(BIN)/python -m simulator.bench --out out/bench

clean:
	rm -rf cdk.out build out .pytest_cache .ruff_cache
