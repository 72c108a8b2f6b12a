"""What `tests/flows/test_secrets.py` runs in a fresh interpreter: a swarm handler, a trace call
and a worktree service start that each raise a secret, through the public flows, against the
session's Prefect server and a loopback OTLP collector. Prints the flow run ids as JSON."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from tests.loopback import QuietHandler, reply, serving
from tests.unit.worktree.helpers import port_range

SECRET_ENV = "SERVICE_API_SECRET"  # a configured secret: its name says it is one


def secret() -> str:
    return os.environ[SECRET_ENV]


def raise_secret(call: dict[str, Any]) -> dict[str, Any]:
    """A swarm handler (`tests.flows.secret_leaks:raise_secret`) that fails quoting the key."""
    raise RuntimeError(f"upstream rejected key {secret()}")


def _run(flow_fn, *args):
    """Run a flow (sync or async) to its final state; the flow run id."""
    outcome = flow_fn(*args, return_state=True)
    state = asyncio.run(outcome) if inspect.isawaitable(outcome) else outcome
    return str(state.state_details.flow_run_id)


@contextlib.contextmanager
def _echoing_system():
    """A system that refuses every call with 401, quoting the key it was 'given'."""

    class Refuse(QuietHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length") or 0))
            reply(self, f"invalid key {secret()}".encode(), 401, "text/plain")

    with serving(Refuse) as server:
        yield f"http://127.0.0.1:{server.server_address[1]}"


def swarm_request(min_success_rate: float) -> dict[str, Any]:
    """Two tasks, one of whose handler fails quoting the key: below a `min_success_rate` over
    0.5 the run fails and is rolled back, with the handler's error in its failure."""
    return {
        "tasks": [
            {"id": "leaky", "type": "leak", "estimated_duration_ms": 50, "retries": 0},
            {"id": "fine", "type": "validation", "estimated_duration_ms": 50},
        ],
        "handlers": {"leak": {"kind": "python", "target": f"{__name__}:raise_secret"}},
        "min_success_rate": min_success_rate,
    }


def swarm_runs() -> list[str]:
    """A run that tolerates the failure and one that fails on it (the shortfall path)."""
    from flows.swarm_coordination import swarm_coordination
    from tasks.swarm.models import SwarmRequest

    return [
        _run(swarm_coordination, SwarmRequest.model_validate(swarm_request(minimum)))
        for minimum in (0.0, 1.0)
    ]


def trace_runs() -> list[str]:
    from flows.trace_orchestration import trace_orchestration
    from tasks.trace.models import TraceRequest

    ids = []
    with _echoing_system() as url:
        for fallback in (True, False):
            system = {"name": "hook", "url": url, "path": f"/hooks/{secret()}", "health_path": None}
            request = TraceRequest(workflow_id="leak", systems=[system], enable_fallback=fallback)
            ids.append(_run(trace_orchestration, request))
    return ids


def worktree_runs(root: Path) -> list[str]:
    from flows.worktree_deployment import worktree_deployment
    from flows.worktree_teardown import worktree_teardown
    from tasks.worktree.models import DeploymentRequest, TeardownRequest
    from tasks.worktree.sample_repo import make_sample_repo

    repo = make_sample_repo(root / "repo", ["ok", "leaky"])
    leak = (
        f"import os, sys; print('key', os.environ['{SECRET_ENV}'], flush=True); "
        f"sys.exit('bad key ' + os.environ['{SECRET_ENV}'])"
    )
    request = DeploymentRequest.model_validate(
        {
            "repo_path": str(repo),
            "worktrees_root": str(root / "worktrees"),
            "on_failure": "keep_healthy",
            "health_check_timeout_s": 10,
            "health_poll_interval_s": 0.2,
            "port_range": list(port_range()),  # not the demo's default range: it may run beside
            "worktrees": [
                {
                    "name": "ok",
                    "branch": "service/ok",
                    "type": "python",
                    "start_command": [sys.executable, "service.py"],
                    "environment_variables": {"UPSTREAM_API_SECRET": secret()},
                },
                {
                    "name": "leaky",
                    "branch": "service/leaky",
                    "type": "python",
                    "start_command": [sys.executable, "-c", leak],
                    # a service gets none of the deployer's secrets unless its spec names them
                    "passthrough_env": [SECRET_ENV],
                },
            ],
        }
    )
    ids = [_run(worktree_deployment, request)]
    # what the deployment left, before teardown removes it
    shutil.copytree(root / "worktrees", root / "worktree-files", dirs_exist_ok=True)
    shutil.copytree(root / "coordination", root / "coordination-deployed", dirs_exist_ok=True)
    force = {"force": True} if "force" in TeardownRequest.model_fields else {}
    ids.append(
        _run(worktree_teardown, TeardownRequest(names=["ok", "leaky"], repo_path=repo, **force))
    )
    return ids


def main(root: Path) -> None:
    from tasks.telemetry import configure_telemetry

    provider = configure_telemetry()
    runs = {"swarm": swarm_runs(), "trace": trace_runs()}
    runs["worktree"] = worktree_runs(root)
    provider.force_flush()
    print(json.dumps(runs))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
