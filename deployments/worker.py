"""`make worker`: Prefect's process worker, run in this process so it can serve the metrics.

    PREFECT_API_URL=… REACTOR_METRICS_PORT=9464 python -m deployments.worker [--limit 4] …

Every argument is passed to `prefect worker start --pool reactor-process --type process` (the
pool can be changed with `--pool`). Each flow run executes in a short-lived subprocess of this
worker; with `REACTOR_METRICS_PORT` set, this process serves the Prometheus endpoint and its
flow runs push their metrics to it (`tasks.metrics_endpoint.serve_metrics`), so one scrape
target shows the totals of every run the worker executed. See docs/operations.md.
"""

from __future__ import annotations

import sys

from tasks.errors import ReactorError
from tasks.metrics_endpoint import serve_metrics

POOL = "reactor-process"  # the work pool prefect.yaml names


def worker_argv(argv: list[str]) -> list[str]:
    """`prefect` CLI arguments for a process worker on the project's pool unless `argv` names
    another (`--pool X`, `-p X`, `--pool=X`)."""
    named = any(a in ("--pool", "-p") or a.startswith("--pool=") for a in argv)
    return ["worker", "start", "--type", "process", *([] if named else ["--pool", POOL]), *argv]


def main(argv: list[str]) -> int:
    try:
        endpoint = serve_metrics()
    except ReactorError as exc:  # e.g. REACTOR_METRICS_PORT=abc, or the port is taken
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
