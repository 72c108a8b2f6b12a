"""A secret raised inside a swarm handler, a trace call and a worktree service start (the
public flows, as they are) never reaches what the run leaves behind: no file under the
coordination dir, the exports dir or the worktrees, no span the real OTLP exporter sends to a
loopback collector, no log line, flow run or task run state message the Prefect server holds,
and not the CLI's error line. The flows run in a fresh interpreter
(tests/flows/secret_leaks.py) so that the OTLP exporter is configured from the environment
as in production."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from uuid import UUID

import pytest

from tests.flows.run_helpers import line_with
from tests.flows.secret_leaks import SECRET_ENV, swarm_request
from tests.loopback import otlp_collector
from tests.prefect_api import run_logs

pytestmark = pytest.mark.timeout(900)  # six flow runs and a CLI run in subprocesses

SECRET = "sk-live-leak-7f3a9c2e5b8d1046"
ROOT = Path(__file__).resolve().parents[2]


async def _state_messages(flow_run_ids: list[str]) -> dict[str, str]:
    """Run name -> state message of each flow run, its subflow runs and all their task runs."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterId,
        FlowRunFilterParentFlowRunId,
        TaskRunFilter,
        TaskRunFilterFlowRunId,
    )

    ids = [UUID(i) for i in flow_run_ids]
    async with get_client() as client:
        flows = await client.read_flow_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids))
        )
        flows += await client.read_flow_runs(
            flow_run_filter=FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=ids))
        )
        tasks = await client.read_task_runs(
            task_run_filter=TaskRunFilter(
                flow_run_id=TaskRunFilterFlowRunId(any_=[f.id for f in flows])
            )
        )
    return {
        f"{run.name} ({run.id})": run.state.message or ""
        for run in [*flows, *tasks]
        if run.state is not None
    }


@pytest.fixture(scope="module")
def leaked(tmp_path_factory):
    """Run the three scenarios once; what they left: (files by area, OTLP bodies, logs, state
    messages by scenario, the CLI's stderr)."""
    from prefect.settings import PREFECT_API_URL

    root = tmp_path_factory.mktemp("secrets")
    with otlp_collector() as (url, requests):
        env = {
            **os.environ,
            SECRET_ENV: SECRET,
            "PREFECT_API_URL": PREFECT_API_URL.value(),
            "OTEL_EXPORTER_OTLP_ENDPOINT": url,
            "REACTOR_COORDINATION_DIR": str(root / "coordination"),
            "REACTOR_EXPORTS_DIR": str(root / "exports"),
        }
        done = subprocess.run(
            [sys.executable, "-m", "tests.flows.secret_leaks", str(root)],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        request = root / "swarm_request.json"
        request.write_text(json.dumps(swarm_request(1.0)), encoding="utf-8")
        cli = subprocess.run(
            [sys.executable, "-m", "reactor", "swarm", "run", str(request)],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
    received = [body for _, body in requests]
    assert done.returncode == 0, done.stderr[-4000:]
    runs = json.loads(done.stdout.strip().splitlines()[-1])
    logs = {
        scenario: "\n".join(run_logs(run_id, expect="Finished in state") for run_id in ids)
        for scenario, ids in runs.items()
    }
    states = {scenario: asyncio.run(_state_messages(ids)) for scenario, ids in runs.items()}
    files = {
        str(p.relative_to(root)): p.read_bytes()
        for area in ("coordination", "coordination-deployed", "exports", "worktree-files")
        for p in (root / area).rglob("*")
        if p.is_file()
    }
    return files, received, logs, states, cli


# Where each scenario keeps what a run left, for the per-scenario tests below.
STORES = {
    "swarm": ("claims.sqlite3", "work_claims.json", "/swarm_"),
    "worktree": ("environment_registry.json", "/.reactor-logs/", "/.env", "/worktree_"),
}


def _holding_secret(files: dict[str, bytes]) -> list[str]:
    return sorted(p for p, data in files.items() if SECRET.encode() in data)


def _owner(path: str) -> str | None:
    for owner, patterns in STORES.items():
        if any(pattern in path for pattern in patterns):
            return owner
    return None


def test_no_file_the_runs_wrote_holds_the_secret(leaked):
    files, *_ = leaked
    assert any(p.startswith("exports/") and "/trace_hops/" in p for p in files)
    assert any(p.startswith("worktree-files/leaky/") for p in files)
    spans = files["coordination/telemetry_spans.jsonl"]
    assert b"[REDACTED]" in spans  # the secret did pass through the spans, and was redacted
    assert _holding_secret(files) == []


def test_swarm_ledger_and_datasets_hold_no_secret(leaked):
    """A failed handler's error, with the key in it, is stored redacted in the claim ledger,
    work_claims.json and the swarm datasets (the ledger and export boundaries redact)."""
    files, *_ = leaked
    ledger = [p for p in files if _owner(p) == "swarm"]
    assert any(p.endswith("claims.sqlite3") for p in ledger)
    assert any("/swarm_claims/" in p for p in ledger)
    assert [p for p in _holding_secret(files) if _owner(p) == "swarm"] == []
    claims = next(data for p, data in files.items() if p.endswith("coordination/work_claims.json"))
    assert b"upstream rejected key [REDACTED]" in claims  # the error itself is kept


def test_worktree_registry_env_and_logs_hold_no_secret(leaked):
    """The registry keeps the user's *_SECRET as [REDACTED], the `.env` names it without its
    value, and the service's own output reaches its log redacted."""
    files, *_ = leaked
    assert [p for p in _holding_secret(files) if _owner(p) == "worktree"] == []
    env_file = files["worktree-files/ok/.env"].decode()
    assert "# UPSTREAM_API_SECRET: a secret, not stored" in env_file
    registry = json.loads(files["coordination-deployed/environment_registry.json"])
    (host,) = registry["hosts"].values()
    assert host["worktree_environments"]["ok"]["service_env"]["UPSTREAM_API_SECRET"] == (
        "[REDACTED]"
    )
    log = files["worktree-files/leaky/.reactor-logs/leaky.log"].decode()
    assert "key [REDACTED]" in log and "bad key [REDACTED]" in log


def test_no_span_sent_over_otlp_holds_the_secret(leaked):
    _, received, *_ = leaked
    assert received and any(b"[REDACTED]" in body for body in received)
    assert [i for i, body in enumerate(received) if SECRET.encode() in body] == []


@pytest.mark.parametrize("scenario", ["swarm", "trace", "worktree"])
def test_no_log_line_on_the_server_holds_the_secret(leaked, scenario):
    _, _, logs, _, _ = leaked
    assert SECRET not in logs[scenario]


def test_trace_logs_show_the_redacted_failure(leaked):
    _, _, logs, _, _ = leaked
    assert line_with(logs["trace"], "hook", "simulated")  # the fallback answered
    assert line_with(logs["trace"], "401", "invalid key [REDACTED]")
    assert "/hooks/[REDACTED]" in logs["trace"]  # the failed run's error names the endpoint


@pytest.mark.parametrize("scenario", ["swarm", "trace", "worktree"])
def test_no_state_message_on_the_server_holds_the_secret(leaked, scenario):
    """What a failed run, subflow or task run says on the server (its state message, built
    from the exception it raised) is redacted like its log."""
    _, _, _, states, _ = leaked
    assert states[scenario]
    assert {run: m for run, m in states[scenario].items() if SECRET in m} == {}


def test_a_swarm_below_its_minimum_fails_naming_the_redacted_error(leaked):
    """The shortfall path: the failed handler's error is in the run's failure, redacted, on the
    server and on the CLI's stderr."""
    _, _, _, states, cli = leaked
    flow_failures = [m for run, m in states["swarm"].items() if "below min_success_rate" in m]
    assert any("upstream rejected key [REDACTED]" in m for m in flow_failures)
    assert cli.returncode != 0
    assert "upstream rejected key [REDACTED]" in cli.stderr and SECRET not in cli.stderr
