"""A trace run SIGKILLed at three points of its own progress, resumed under the same flow-run id:
systems that answered are not called again, every call carries the run's one trace id and
correlation id, and the hops dataset and the coordination log have the run once."""

from __future__ import annotations

import pandas as pd
import pytest

from tasks.coordination_log import read_log
from tasks.export import dataset_folder, read_export
from tasks.trace.sample import rebase_urls, sample_trace_request
from tasks.trace.standins import Behaviour, StandinConfig, run_standins
from tests.crash import persisted_results, resume, run_and_kill
from tests.waiting import wait_until

# a spawned Prefect process starts in ~30 s on loaded shared cores; the kill tests wait for it
pytestmark = pytest.mark.timeout(600)

ENTRY = "flows.trace_orchestration:trace_orchestration"
SYSTEMS = 4
SLOW = StandinConfig(  # audit answers first, then phoenix -> n8n -> xavos one after another
    instances={
        "phoenix": Behaviour(latency_ms=400),
        "n8n": Behaviour(latency_ms=400),
        "xavos": Behaviour(latency_ms=400),
        "audit": Behaviour(latency_ms=50),
    }
)


@pytest.fixture(scope="module")
def standins():
    with run_standins(SLOW) as running:
        yield running


def answered(standins) -> int:
    """Calls the systems answered with a success: the stand-ins' own record."""
    return sum(1 for r in standins.received() if r.status_code < 300)


def in_flight(standins) -> int:
    """Connections and requests the stand-ins' server still has (uvicorn's own sets): a killed
    client's connections close, and a request it had sent is handled before its close is."""
    state = standins.server.server_state
    return len(state.connections) + len(state.tasks)


def persisted_calls(settings) -> int:
    """Call results the run persisted: result files beyond the trace identity's."""
    return max(0, persisted_results(settings) - 1)


def hops_files(settings) -> list:
    return sorted(dataset_folder(settings.exports_dir, "trace_hops", "json").rglob("*.json"))


KILL_POINTS = {
    "after-first-answer": lambda s: persisted_calls(s) >= 1,
    "midway": lambda s: persisted_calls(s) >= 3,
    "during-export": lambda s: len(hops_files(s)) > 0,
}


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_killed_trace_run_resumes_calling_only_systems_that_had_not_answered(
    reactor_env, standins, point
):
    standins.configure(SLOW)  # forgets what earlier tests' runs sent
    request = rebase_urls(sample_trace_request(), standins.base_url)
    persisted: list[int] = []

    def kill_when() -> bool:
        persisted.append(persisted_calls(reactor_env))
        return KILL_POINTS[point](reactor_env)

    killed = run_and_kill(ENTRY, {"request": request.model_dump(mode="json")}, kill_when)
    # a call in flight at the kill still gets its answer made (and recorded): wait till none is
    wait_until("the stand-ins' calls in flight to end", lambda: not in_flight(standins))
    # answered but killed before the result was persisted: the only calls that may be repeated
    repeatable = answered(standins) - persisted[-1]

    outcome = resume(killed.flow_run_id)

    assert outcome.flow_run_id == killed.flow_run_id and outcome.state == "Completed"
    received = standins.received()
    ok = [r for r in received if r.status_code < 300]
    assert {r.instance for r in ok} == {"phoenix", "n8n", "xavos", "audit"}
    assert len(ok) - SYSTEMS <= repeatable, f"answered systems called again: {ok}"
    (entry,) = [e for e in read_log(reactor_env) if e.get("run_id") == str(killed.flow_run_id)]
    assert {r.traceparent.split("-")[1] for r in received} == {entry["trace_id"]}
    assert {r.correlation_id for r in received} == {entry["correlation_id"]}
    hops = pd.concat([read_export(f) for f in hops_files(reactor_env)], ignore_index=True)
    assert len(hops) == SYSTEMS and not hops.duplicated(["system", "source"]).any()
    assert set(hops["run_id"]) == {str(killed.flow_run_id)}
    assert set(hops["trace_id"]) == {entry["trace_id"]}
