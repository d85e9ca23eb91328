# sidecar — run `make help` for the targets.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMPS := .stamps
ARCH := $(shell uname -m)
# Compose v2 when the plugin is there, else Debian's docker-compose 1.29.
COMPOSE ?= $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)
SIDECAR_IMAGE ?= sidecar:latest
export SIDECAR_IMAGE
# docker-compose 1.29 starts a service whose service_healthy dependency has exited
# (failed); holding the failed migrator past start_period (2m) + 3 x 1s lets
# Docker mark it unhealthy first. See docker-compose.yml.
ifeq ($(COMPOSE),docker-compose)
export SIDECAR_FAILURE_HOLD ?= 130s
endif
IMAGES_ENV := $(STAMPS)/images.env
# Recipes that run Compose or docker build take the base image names from here.
WITH_IMAGES = set -a && { ! test -f $(IMAGES_ENV) || . ./$(IMAGES_ENV); } && set +a &&

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
test: venv postgres images ## run every test: unit, integration (real PostgreSQL), end-to-end (real Docker)
	$(WITH_IMAGES) $(BIN)/pytest

.PHONY: test-unit
test-unit: venv ## unit tests only: no server needed
	$(BIN)/pytest tests/unit

.PHONY: test-integration
test-integration: venv postgres ## integration tests against a throwaway PostgreSQL
	$(BIN)/pytest tests/integration

.PHONY: test-e2e
test-e2e: venv images ## end-to-end tests: the Compose stack on the real Docker engine
	$(WITH_IMAGES) $(BIN)/pytest tests/e2e

# --- images and the example stack -------------------------------------------

.PHONY: base-images
base-images: ## official base images if present or pullable, else local Debian stand-ins
	@scripts/base-images.sh

$(STAMPS)/wheelhouse: pyproject.toml | $(STAMPS)/venv
	@mkdir -p $(STAMPS)
	rm -f wheelhouse/*.whl
	$(BIN)/pip download --quiet --only-binary=:all: --platform manylinux2014_$(ARCH) \
		--python-version 3.11 --implementation cp --dest wheelhouse \
		$$($(BIN)/python -c 'import tomllib; p = tomllib.load(open("pyproject.toml", "rb")); \
			print(*p["project"]["dependencies"], *p["build-system"]["requires"])')
	@touch $@

.PHONY: wheelhouse
wheelhouse: $(STAMPS)/wheelhouse ## download the image's wheels on the host (containers may not reach PyPI)

$(STAMPS)/image: $(STAMPS)/wheelhouse $(IMAGES_ENV) Dockerfile.sidecar .dockerignore pyproject.toml $(wildcard sidecar/*.py)
	$(WITH_IMAGES) docker build --quiet -f Dockerfile.sidecar --build-arg BASE_IMAGE="$$PYTHON_IMAGE" \
		--build-arg PIP_OPTIONS=--no-index -t $(SIDECAR_IMAGE) . >/dev/null
	@docker image inspect -f '$(SIDECAR_IMAGE): {{.Size}} bytes' $(SIDECAR_IMAGE)
	@touch $@

.PHONY: images
images: base-images ## build the sidecar image (and base images when needed)
	@docker image inspect $(SIDECAR_IMAGE) >/dev/null 2>&1 || rm -f $(STAMPS)/image
	@$(MAKE) --no-print-directory $(STAMPS)/image

.PHONY: up
up: images ## run the example stack in the background; the backend starts once the migrator is healthy
	$(WITH_IMAGES) $(COMPOSE) up -d --no-build
	$(WITH_IMAGES) $(COMPOSE) ps

.PHONY: down
down: ## stop the example stack and remove its volumes
	-$(WITH_IMAGES) $(COMPOSE) down -v

.PHONY: ps
ps: ## show the example stack's containers and their health
	$(WITH_IMAGES) $(COMPOSE) ps

.PHONY: logs
logs: ## show the migrator's log
	$(WITH_IMAGES) $(COMPOSE) logs migrator

.PHONY: lint
lint: venv ## ruff and mypy (strict)
	$(BIN)/ruff check sidecar tests
	$(BIN)/mypy sidecar

.PHONY: clean
clean: ## remove the virtual environment, wheels and build stamps (images stay)
	rm -rf $(VENV) $(STAMPS) *.egg-info wheelhouse/*.whl
