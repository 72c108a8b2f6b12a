"""`python -m deployments.serve` (`make serve`): run every deployment of prefect.yaml from this
process, for users without a work pool or worker. The schedules, parameters and tags are read
from prefect.yaml, so the two ways of running stay the same. With `REACTOR_METRICS_PORT` set,
this process serves the Prometheus endpoint for every run it executes (docs/operations.md).

Served deployments have their own names, `<name>-served` (e.g. `spr-pipeline/spr-nightly-served`),
so `make serve` and `make deploy` live side by side in either order: serving under the deployed
names would turn the worker's deployments into this process's (their runs then crash looking
for flow code "at None" once it is gone), and stopping serve pauses the schedules of the
deployments it served, which are then only its own.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import yaml

PROJECT_DIR = Path(__file__).resolve().parent.parent
SERVED_SUFFIX = "-served"


def served_name(name: str) -> str:
    """The name `make serve` gives the prefect.yaml deployment `name`."""
    return f"{name}{SERVED_SUFFIX}"


def load_deployments(path: Path = PROJECT_DIR / "prefect.yaml") -> list[dict[str, Any]]:
    return yaml.safe_load(path.read_text())["deployments"]


def load_flow(entrypoint: str):
    """The flow object at `path/to/file.py:function`, relative to the project root."""
    file, _, name = entrypoint.partition(":")
    module_name = Path(file).with_suffix("").as_posix().replace("/", ".")
    if str(PROJECT_DIR) not in sys.path:
        sys.path.insert(0, str(PROJECT_DIR))
    spec = importlib.util.find_spec(module_name)
    if spec is None:
        raise ImportError(f"cannot import {module_name} for entrypoint {entrypoint}")
    return getattr(importlib.import_module(module_name), name)


def to_runner_deployment(entry: dict[str, Any]):
    """A RunnerDeployment with the schedules, parameters and tags of a prefect.yaml entry."""
    from prefect.schedules import Cron, Interval

    schedules = []
    for s in entry.get("schedules") or []:
        if "cron" in s:
            schedules.append(Cron(s["cron"], timezone=s.get("timezone", "UTC")))
        elif "interval" in s:
            schedules.append(Interval(s["interval"]))
    flow = load_flow(entry["entrypoint"])
    return flow.to_deployment(
        name=served_name(entry["name"]),
        description=entry.get("description"),
        tags=entry.get("tags", []),
        parameters=entry.get("parameters", {}),
        schedules=schedules,
        enforce_parameter_schema=entry.get("enforce_parameter_schema", True),
    )


def main() -> int:
    from prefect import serve

    from tasks.errors import ReactorError
    from tasks.metrics_endpoint import serve_metrics

    # flow runs execute in subprocesses of this one and push their metrics to its endpoint
    try:
        endpoint = serve_metrics()
    except ReactorError as exc:  # e.g. REACTOR_METRICS_PORT=abc, or the port is taken
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if endpoint is not None:
        print(f"metrics: {endpoint.scrape_url}")
    serve(*(to_runner_deployment(e) for e in load_deployments()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
