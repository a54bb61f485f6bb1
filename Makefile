# Everything a fresh machine needs, from nothing: `make serve` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install serve migrate check repair test lint format clean

$(STAMP): setup.py pyproject.toml
	@# Debian/Ubuntu ship venv and ensurepip separately from python3.
	@$(PYTHON) -c 'import venv, ensurepip' 2>/dev/null || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $@

install: $(STAMP)

# Honours PYMAGER_CONFIG (default ./pymager.ini).
migrate: $(STAMP)
	$(BIN)/python pymager_standalone.py --migrate

serve: migrate
	$(BIN)/python pymager_standalone.py

# Report what crashes left inconsistent (exit 1 if anything); `make repair` fixes it.
check: $(STAMP)
	$(BIN)/python pymager_standalone.py --check

repair: $(STAMP)
	$(BIN)/python pymager_standalone.py --repair

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: $(STAMP)
	$(MAKE) lint
	$(BIN)/pytest

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
