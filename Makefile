# Reactor Flows — every target installs what it needs first (`make setup` is idempotent).
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
PREFECT_HOST ?= 127.0.0.1
PREFECT_PORT ?= 4200
# Prefect server settings measured here: analytics off (it causes "database is locked"),
# task-run recorder batches of 100 (otherwise task-run history is lost and CPU burnt).
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE := 100
export PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_READ_BATCH_SIZE := 100

.PHONY: setup demo test lint format server stop deploy worker serve bench lock clean
# Runs its command with PREFECT_API_URL set to the running server (PREFECT_API_URL's own, or the
# one `make server` started); fails clearly when there is none.
WITH_API = api=$$($(PY) -m deployments.server url) || { echo "no Prefect server: run 'make server' or set PREFECT_API_URL" >&2; exit 1; }; PREFECT_API_URL=$$api
POOL ?= reactor-process  # the work pool prefect.yaml names

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml requirements.lock
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c requirements.lock -e '.[dev,dask]'
	touch $@

demo: setup
	$(BIN)/reactor demo

test: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

server: setup
	$(PY) -m deployments.server start

stop: setup
	$(PY) -m deployments.server stop

deploy: setup
	@$(WITH_API) $(PY) -m deployments.deploy

worker: setup
	@$(WITH_API) PATH=$(CURDIR)/$(VENV)/bin:$$PATH $(BIN)/prefect worker start --pool $(POOL) --type process

serve: setup
	@$(WITH_API) $(PY) -m deployments.serve

bench: setup
	@for b in bench/*_bench.py; do echo "== $$b"; $(PY) $$b || exit 1; done

lock:
	rm -rf /tmp/reactor-lock && python3 -m venv /tmp/reactor-lock
	/tmp/reactor-lock/bin/pip install -q --upgrade pip
	/tmp/reactor-lock/bin/pip install -q -e '.[dev,dask]'
	( echo '# Full resolved set for a fresh `make setup` (pip freeze of a clean install). Regenerate with `make lock`.'; \
	  /tmp/reactor-lock/bin/pip freeze --exclude-editable ) > requirements.lock

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .prefect-server
