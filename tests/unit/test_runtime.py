"""Every deployment's entrypoint loads a flow made by `reactor_flow`: a real Prefect `Flow` of
the module's own function, with the project's runner, parameter validation, stated results and
the per-run telemetry hook."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
import yaml
from prefect import Flow
from prefect.flows import load_flow_from_entrypoint

from tasks.runtime import SharedClientTaskRunner, _telemetry_for_this_run

ROOT = Path(__file__).resolve().parents[2]
ENTRYPOINTS = sorted(
    {d["entrypoint"] for d in yaml.safe_load((ROOT / "prefect.yaml").read_text())["deployments"]}
)


@pytest.mark.parametrize("entrypoint", ENTRYPOINTS)
def test_each_entrypoint_loads_a_flow_made_by_reactor_flow(entrypoint, monkeypatch):
    monkeypatch.chdir(ROOT)
    loaded = load_flow_from_entrypoint(entrypoint, use_placeholder_flow=False)
    path, _, name = entrypoint.partition(":")
    assert type(loaded) is Flow
    assert loaded.fn.__name__ == name and Path(inspect.getsourcefile(loaded.fn)) == ROOT / path
    assert loaded.should_validate_parameters
    assert loaded.persist_result is not None and loaded.result_storage is not None
    assert isinstance(loaded.task_runner, SharedClientTaskRunner)  # the default settings
    assert _telemetry_for_this_run in loaded.on_running_hooks
