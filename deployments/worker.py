"""`make worker`: Prefect's process worker, run in this process so it can serve the metrics.

    PREFECT_API_URL=… REACTOR_METRICS_PORT=9464 python -m deployments.worker [--limit 4] …

Every argument is passed to `prefect worker start --pool reactor-process --type process` (the
pool can be changed with `--pool`). Each flow run executes in a short-lived subprocess of this
worker; with `REACTOR_METRICS_PORT` set, this process serves the Prometheus endpoint and its
flow runs push their metrics to it (`tasks.metrics.serve_metrics`), so one scrape target shows
the totals of every run the worker executed. See docs/operations.md.
"""

from __future__ import annotations

import sys

from pydantic import ValidationError

from tasks.errors import ReactorError
from tasks.metrics import serve_metrics

POOL = "reactor-process"  # the work pool prefect.yaml names


def worker_argv(argv: list[str]) -> list[str]:
    """`prefect` CLI arguments for a process worker on the project's pool unless `argv` names
    another (`--pool X`, `-p X`, `--pool=X`)."""
    named = any(a in ("--pool", "-p") or a.startswith("--pool=") for a in argv)
    return ["worker", "start", "--type", "process", *([] if named else ["--pool", POOL]), *argv]


def settings_message(exc: ValidationError) -> str:
    """One line naming the environment variable whose value is wrong (never the value: it may
    be a secret)."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    return f"REACTOR_{where.upper()}: {first['msg']}" if where else first["msg"]


def main(argv: list[str]) -> int:
    try:
        endpoint = serve_metrics()
    except ValidationError as exc:  # e.g. REACTOR_METRICS_PORT=abc
        print(f"error: {settings_message(exc)}", file=sys.stderr)
        return 2
    except ReactorError as exc:  # e.g. the metrics port is taken
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if endpoint is not None:
        print(f"metrics: {endpoint.scrape_url} (flow runs push to {endpoint.push_url})")
    from prefect.cli import app

    sys.argv = ["prefect", *worker_argv(argv)]  # Prefect's CLI entry point reads sys.argv
    try:
        app()
    except SystemExit as done:
        return int(done.code or 0)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
