# Stratus: `make run` starts the whole embedded cloud, `make test` runs the whole suite.
# Both work on a fresh Debian 12 machine as root: they install what is missing, and only that.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
PYTEST_ARGS ?=
# Two pytest-xdist workers by default (one per core of the 2-core machine the suite is sized for): the
# suite waits on servers, Celery workers, browsers and CLIs much of the time. TEST_WORKERS=0 runs it serially.
TEST_WORKERS ?= 2
BENCH_VERDICTS ?= var/bench-verdicts.jsonl
export PYTHON VENV

SCRIPTS := portal/scripts

.PHONY: help run node test lint bench system-deps-run system-deps-test system-deps-bench venv-run venv venv-tempest venv-runtime services clean

help:  ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

run: system-deps-run venv-run  ## Start the embedded cloud in the foreground (web, Celery worker and beat, Redis)
	$(VENV)/bin/python manage.py up

# make node CONTROLLER=http://controller:8000 TOKEN=stn_... ROLE=compute [NAME=node2]: join this machine to a
# controller as one node (README "More than one machine"). The token (`manage.py node_token create` on the
# controller) is good once: it is exchanged for the node's settings, written to $(NODE_ENV) (mode 0600); a
# later `make node ROLE=...` without TOKEN starts again from that file. A node needs no database.
NODE_ENV ?= var/node.env
node: system-deps-run venv-run  ## Join this machine to a controller: CONTROLLER=... TOKEN=... ROLE=compute|network|storage
	@test -n "$(ROLE)" || { echo "usage: make node CONTROLLER=http[s]://... TOKEN=... ROLE=compute|network|storage [NAME=...]" >&2; exit 2; }
	@if [ -n "$(TOKEN)" ]; then \
	  test -n "$(CONTROLLER)" || { echo "make node: CONTROLLER=http[s]://... is needed with TOKEN" >&2; exit 2; }; \
	  STRATUS_NODE_TOKEN='$(TOKEN)' $(VENV)/bin/python manage.py node_enrol --controller '$(CONTROLLER)' \
	    --role '$(ROLE)' $(if $(NAME),--name '$(NAME)') --env-file '$(NODE_ENV)' || exit 1; \
	elif [ ! -f '$(NODE_ENV)' ]; then \
	  echo "make node: no TOKEN and no $(NODE_ENV) from an earlier enrolment" >&2; exit 2; \
	fi
	set -a && . './$(NODE_ENV)' && set +a && exec $(VENV)/bin/python manage.py up --role '$(ROLE)'

test: system-deps-test venv venv-tempest venv-runtime services  ## Lint, then the whole pytest suite against real PostgreSQL and Redis
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pytest -n $(TEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

lint: venv  ## ruff check
	$(VENV)/bin/ruff check .

bench: system-deps-bench venv services  ## Benchmarks (tokens, images, ports, scheduler, boots, server lists, volumes, objects, telemetry, orchestration); each prints its figures
	@mkdir -p $(dir $(BENCH_VERDICTS)) && rm -f $(BENCH_VERDICTS)
	-STRATUS_BENCH_VERDICTS=$(BENCH_VERDICTS) $(VENV)/bin/python bench/token_validation.py
	-STRATUS_BENCH_VERDICTS=$(BENCH_VERDICTS) $(VENV)/bin/python bench/image_throughput.py --size-mib 512
	-STRATUS_BENCH_VERDICTS=$(BENCH_VERDICTS) $(VENV)/bin/python bench/port_create.py
	-STRATUS_BENCH_VERDICTS=$(BENCH_VERDICTS) $(VENV)/bin/python bench/boots.py
	-STRATUS_BENCH_VERDICTS=$(BENCH_VERDICTS) $(VENV)/bin/python bench/server_get.py
	-STRATUS_BENCH_VERDICTS=$(BENCH_VERDICTS) $(VENV)/bin/python bench/server_list.py
	-STRATUS_BENCH_VERDICTS=$(BENCH_VERDICTS) $(VENV)/bin/python bench/scheduler.py
	-STRATUS_BENCH_VERDICTS=$(BENCH_VERDICTS) $(VENV)/bin/python bench/volumes.py
	-STRATUS_BENCH_VERDICTS=$(BENCH_VERDICTS) $(VENV)/bin/python bench/objects.py
	-STRATUS_BENCH_VERDICTS=$(BENCH_VERDICTS) $(VENV)/bin/python bench/telemetry.py
	-STRATUS_BENCH_VERDICTS=$(BENCH_VERDICTS) $(VENV)/bin/python bench/orchestration.py
	$(VENV)/bin/python bench/verdict.py $(BENCH_VERDICTS)

system-deps-run:  ## Debian packages for `make run` (installed only when missing)
	@bash $(SCRIPTS)/system-deps.sh run
system-deps-test:  ## Debian packages for `make test`: adds PostgreSQL and Chromium
	@bash $(SCRIPTS)/system-deps.sh test
system-deps-bench:  ## Debian packages for `make bench`: adds PostgreSQL and wrk
	@bash $(SCRIPTS)/system-deps.sh bench

venv-run:  ## .venv from requirements.txt (only when it changed)
	@bash $(SCRIPTS)/venv.sh run
venv:  ## .venv from requirements-test.txt (only when it changed)
	@bash $(SCRIPTS)/venv.sh test
venv-runtime:  ## .venv-run from requirements.txt alone, for the tests that run as a newcomer's `make run` would
	@bash $(SCRIPTS)/venv.sh runtime
venv-tempest:  ## .venv-tempest from requirements-tempest.txt, for the tempest tests (only when it changed)
	@bash $(SCRIPTS)/venv.sh tempest

services:  ## Start PostgreSQL and Redis on 127.0.0.1 when absent; ensure the stratus role
	@bash $(SCRIPTS)/test-services.sh

clean:  ## Remove caches (keeps .venv and the data dir var/)
	rm -rf .pytest_cache .ruff_cache
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
