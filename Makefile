# sidecar — run `make help` for the targets.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMPS := .stamps
PG_BINDIR := $(lastword $(sort $(wildcard /usr/lib/postgresql/*/bin)))

.PHONY: help
help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

$(STAMPS)/venv: pyproject.toml
	@mkdir -p $(STAMPS)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,dev]'
	@touch $@

.PHONY: venv
venv: $(STAMPS)/venv ## make the virtual environment with the test and lint tools

.PHONY: postgres
postgres: ## install Debian's postgresql package when its server binaries are missing (root only)
	@if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
		echo "installing PostgreSQL from Debian's packages"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	else echo "PostgreSQL server binaries missing: run 'sudo apt-get install postgresql'" >&2; exit 1; fi

.PHONY: test
test: venv postgres ## run every test: unit, integration (real PostgreSQL), end-to-end (real Docker)
	$(BIN)/pytest

.PHONY: test-unit
test-unit: venv ## unit tests only: no server needed
	$(BIN)/pytest tests/unit

.PHONY: test-integration
test-integration: venv postgres ## integration tests against a throwaway PostgreSQL
	$(BIN)/pytest tests/integration

.PHONY: lint
lint: venv ## ruff and mypy (strict)
	$(BIN)/ruff check sidecar tests
	$(BIN)/mypy sidecar

.PHONY: clean
clean: ## remove the virtual environment and build stamps
	rm -rf $(VENV) $(STAMPS) *.egg-info
