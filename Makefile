# Reactor Flows — every target installs what it needs first (`make setup` is idempotent).
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
# Prefect's server settings live in prefect.toml (Prefect reads it from the working directory).

.PHONY: setup postgres-bin demo test test-quick lint format server stop postgres postgres-stop deploy worker serve objectstore objectstore-stop bench lock clean
# Runs its command with PREFECT_API_URL set to the server to use (PREFECT_API_URL's own, else the
# one `make server` started for this checkout) and says which on stderr; when that server does
# not answer, one `error:` line says which and what to do.
# Python caches compiled modules (__pycache__) for every process the targets start, even where
# the environment turns that off: without the cache each interpreter recompiles what it imports
# (a fresh one importing the flows took twice the CPU: docs/testing.md).
unexport PYTHONDONTWRITEBYTECODE
WITH_API = api=$$($(PY) -m deployments.server url) || exit 1; PREFECT_API_URL=$$api
POOL ?= reactor-process  # the work pool prefect.yaml names
UV_VERSION := 0.13.8

setup: $(VENV)/.installed postgres-bin

# The tests (and `make postgres`) run a throwaway PostgreSQL from the machine's binaries; install
# Debian's when initdb is missing (as root; without its default cluster, so no server is left
# running), unless REACTOR_TEST_DATABASE_URL names a server to use instead.
postgres-bin:
	@if [ -z "$$REACTOR_TEST_DATABASE_URL" ] && ! command -v initdb >/dev/null 2>&1 \
	    && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
	  if [ "$$(id -u)" != 0 ]; then \
	    echo "error: PostgreSQL (initdb) is needed: install it (apt-get install postgresql) or set REACTOR_TEST_DATABASE_URL" >&2; exit 1; \
	  fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-common \
	  && sed -i 's/^#* *create_main_cluster.*/create_main_cluster = false/' /etc/postgresql-common/createcluster.conf \
	  && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; \
	fi

$(VENV)/.installed: pyproject.toml requirements.lock
	test -x $(PY) || python3 -m venv $(VENV)
	# uv resolves and installs the locked set in seconds where pip takes ~90 s; it is itself pinned.
	test -x $(BIN)/uv || $(PY) -m pip install -q uv==$(UV_VERSION)
	$(BIN)/uv pip install -q --python $(PY) -c requirements.lock -e '.[dev,dask]'
	touch $@

demo: setup
	$(BIN)/reactor demo

# The test files run on TEST_WORKERS pytest-xdist workers, each with its own Prefect test server
# and PostgreSQL; a file stays on one worker, so its module fixtures start once. Four on 2 cores:
# the tests wait on processes and servers part of the time, which more workers fill, and beside
# other busy processes each runnable thread gets an equal share (same commit, clean clones:
# 4 min 13 s against 4 min 40 s with three, 9 min 37 s against 10 min 46 s beside 4 busy loops;
# docs/testing.md).
# --no-loadscope-reorder: the files go out in the order tests/conftest.py gives them (longest
# first), not by their count of tests.
TEST_WORKERS ?= 4
test: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

# The inner loop: unit and contract tests on the embedded backends (SQLite/JSON), without a
# Prefect server, PostgreSQL or the slow-marked tests; `make test` runs everything. ~43 s of CPU
# in one process (measured), so two workers.
test-quick: $(VENV)/.installed
	$(BIN)/pytest tests/unit tests/contract -q -n 2 -m "not postgres and not prefect_server and not objectstore and not slow"

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# This checkout's Prefect server (on 4200, or a free port when 4200 is taken; its home, log and
# record in .prefect-server/); `make stop` stops it and nothing else. Every reactor command and
# make target of this checkout uses it while it runs. With PREFECT_SERVER_DATABASE_CONNECTION_URL
# set (postgresql://… or postgresql+asyncpg://…) it runs on that database, checked first, and with
# PREFECT_SERVER_API_HOST=0.0.0.0 it listens for the workers of other hosts (docs/guide.md, "Several hosts").
server: setup
	@$(PY) -m deployments.server start

stop: setup
	@$(PY) -m deployments.server stop

# A local PostgreSQL for the multi-host mode on one machine: prints REACTOR_DATABASE_URL.
postgres: setup
	@$(PY) -m deployments.postgres start

postgres-stop: setup
	@$(PY) -m deployments.postgres stop

# A local S3 server (SeaweedFS) for datasets and task results shared by several hosts on one
# machine: prints the AWS_* and REACTOR_EXPORTS_DIR variables to export (docs/storage.md).
objectstore: setup
	@$(PY) -m deployments.objectstore start

objectstore-stop: setup
	@$(PY) -m deployments.objectstore stop

deploy: setup
	@$(WITH_API) $(PY) -m deployments.deploy

# Prefect's process worker, run by deployments/worker.py so that, with REACTOR_METRICS_PORT set,
# it serves the Prometheus endpoint its flow runs push to (docs/operations.md).
worker: setup
	@$(WITH_API) PATH=$(CURDIR)/$(VENV)/bin:$$PATH $(PY) -m deployments.worker --pool $(POOL)

serve: setup
	@$(WITH_API) $(PY) -m deployments.serve

bench: setup
	@for b in bench/*_bench.py; do echo "== $$b"; $(PY) $$b || exit 1; done

lock:
	rm -rf /tmp/reactor-lock && python3 -m venv /tmp/reactor-lock
	/tmp/reactor-lock/bin/pip install -q uv==$(UV_VERSION)
	/tmp/reactor-lock/bin/uv pip install -q --python /tmp/reactor-lock/bin/python -e '.[dev,dask]'
	( echo '# Full resolved set for a fresh `make setup` (a clean install, frozen). Regenerate with `make lock`.'; \
	  /tmp/reactor-lock/bin/uv pip freeze --python /tmp/reactor-lock/bin/python --exclude-editable | grep -v '^uv==' ) > requirements.lock

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .prefect-server
