"""The trace flow over real HTTP against the loopback stand-ins."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flows.trace_orchestration import trace_orchestration
from reactor.cli import app
from tasks.coordination_log import read_log
from tasks.errors import ServiceUnhealthy
from tasks.export import read_export
from tasks.settings import get_settings
from tasks.span_log import read_spans, spans_path
from tasks.trace.sample import SAMPLE_SYSTEMS, rebase_urls, sample_trace_request
from tasks.trace.standins import Behaviour, StandinConfig, run_standins
from tasks.tracing import decode_baggage
from tests.flows.run_helpers import isolated_settings, line_with
from tests.loopback import free_port
from tests.prefect_api import run_logs

FAST = StandinConfig(
    instances={
        "phoenix": Behaviour(latency_ms=10),
        "n8n": Behaviour(latency_ms=120, fail_first=1),
        "xavos": Behaviour(latency_ms=10),
        "audit": Behaviour(latency_ms=5),
    }
)


def run_trace(request):
    """The flow's result and its flow run id."""
    state = asyncio.run(trace_orchestration(request, return_state=True))
    return state.result(), state.state_details.flow_run_id


def sample_request():
    return sample_trace_request()


@pytest.fixture(scope="module")
def standins():
    with run_standins(FAST) as running:
        yield running


@pytest.fixture(scope="module")
def sample_run(standins, tmp_path_factory):
    """The bundled sample, run once; the tests below read what it left behind."""
    with isolated_settings(tmp_path_factory, "trace") as settings:
        standins.configure(FAST)
        result, run_id = run_trace(rebase_urls(sample_request(), standins.base_url))
        yield result, standins.received(), settings, run_id


def test_every_system_received_the_same_trace_id_and_distinct_parent_ids(sample_run):
    result, received, *_ = sample_run
    assert sorted(r.instance for r in received) == ["audit", "n8n", "n8n", "phoenix", "xavos"]
    assert {r.traceparent.split("-")[1] for r in received} == {result.trace_id}
    parents = [r.traceparent.split("-")[2] for r in received]
    assert len(set(parents)) == len(parents) == 5
    assert all(r.traceparent_count == 1 for r in received)


def test_every_system_received_the_baggage_and_correlation_id(sample_run):
    result, received, *_ = sample_run
    assert result.correlation_id.startswith("coord_")
    for r in received:
        assert r.correlation_id == result.correlation_id
        assert r.tracestate.split(",")[0] == f"reactor={result.correlation_id}"
        assert decode_baggage(r.baggage) == {
            "workflow.id": "trace-flow-reactor",
            "workflow.type": "multi-system-trace",
            "correlation.id": result.correlation_id,
            "system.origin": "reactor-flows",
            "tenant": "reactor demo",
            "user.id": "demo-user",
        }
    upstream = {r.instance: r.upstream for r in received}
    assert upstream == {"phoenix": [], "n8n": ["phoenix"], "xavos": ["n8n"], "audit": []}


def test_spans_in_the_jsonl_form_one_tree(sample_run):
    result, _, settings, _ = sample_run
    spans = read_spans(spans_path(settings), result.trace_id)
    ids = {s["span_id"] for s in spans}
    roots = [s for s in spans if s["parent_span_id"] not in ids]
    assert len(roots) == 1
    ours = next(s for s in spans if s["operation_name"] == "trace trace-flow-reactor")
    # our root span tops the tree, or sits under Prefect's flow-run span when telemetry was
    # configured before the flow run started (then Prefect's span is recording too)
    assert roots[0] is ours or ours["parent_span_id"] == roots[0]["span_id"]
    children: dict[str, list[str]] = {}
    for s in spans:
        children.setdefault(s["parent_span_id"], []).append(s["span_id"])
    reached, stack = set(), [roots[0]["span_id"]]
    while stack:
        node = stack.pop()
        reached.add(node)
        stack.extend(children.get(node, []))
    assert reached == ids
    kinds = [s["span_attributes"].get("reactor.trace.kind") for s in spans]
    assert kinds.count("system") == 4 and kinds.count("attempt") == 5
    assert kinds.count("server") == 5  # the stand-ins continued the trace they were sent


def test_analysis_names_the_slow_system_and_the_retry(sample_run):
    result, *_ = sample_run
    a = result.analysis
    assert a.critical_path == ["phoenix", "n8n", "xavos"] and a.bottlenecks == ["n8n"]
    n8n = next(s for s in a.systems if s.name == "n8n")
    assert n8n.attempts == 2 and n8n.max_ms >= 120
    assert any(r.startswith("n8n is a bottleneck") for r in a.recommendations)
    assert [p.status for p in result.path] == ["ok"] * 4


def test_hops_dataset_and_coordination_log_entry(sample_run):
    result, _, settings, _ = sample_run
    parquet = next(p for p in result.exports if p.endswith(".parquet"))
    frame = read_export(parquet)
    assert sorted(frame["system"]) == ["audit", "n8n", "phoenix", "xavos"]
    assert set(frame["trace_id"]) == {result.trace_id}
    assert frame.set_index("system").loc["n8n", "attempts"] == 2
    assert frame.set_index("system").loc["n8n", "bottleneck"]
    entry = [e for e in read_log(settings) if e.get("scenario") == "trace"][-1]
    assert entry["trace_id"] == result.trace_id and entry["bottlenecks"] == ["n8n"]


def _sample_with_down(system: str, standins, **changes):
    request = rebase_urls(sample_request(), standins.base_url)
    down = f"http://127.0.0.1:{free_port()}"
    systems = [
        s.model_copy(update={"url": down}) if s.name == system else s for s in request.systems
    ]
    return request.model_copy(update={"systems": systems, **changes})


def test_down_system_with_fallback_is_marked_simulated_with_the_reason(standins, reactor_env):
    standins.configure(FAST)
    result, _ = run_trace(_sample_with_down("n8n", standins))
    path = {p.system: p for p in result.path}
    assert path["n8n"].status == "simulated" and "ConnectError" in path["n8n"].reason
    assert path["n8n"].execution_id.startswith("fallback_")
    assert result.results["n8n"].response["simulated"] is True
    assert {p.status for n, p in path.items() if n != "n8n"} == {"ok"}
    xavos = standins.received("xavos")[0]
    assert xavos.upstream == ["n8n"]  # xavos still ran, on the labelled fallback result
    assert any(r.startswith("n8n was simulated") for r in result.analysis.recommendations)


def test_down_system_without_fallback_fails_naming_it_within_its_timeouts(standins, reactor_env):
    standins.configure(FAST)
    request = _sample_with_down("phoenix", standins, enable_fallback=False)
    start = time.perf_counter()
    with pytest.raises(ServiceUnhealthy, match=r"system 'phoenix' \(http://127\.0\.0\.1:\d+"):
        asyncio.run(trace_orchestration(request))
    assert time.perf_counter() - start < 2.0 * 1.5 * 3 + 1  # well inside the timeout budget
    assert standins.received("n8n") == [] and standins.received("xavos") == []


def test_cli_runs_the_sample_on_standins_and_prints_json(reactor_env):
    out = CliRunner().invoke(app, ["trace", "run", str(SAMPLE_SYSTEMS), "--standins", "--json"])
    assert out.exit_code == 0, out.output
    body = json.loads(out.stdout)
    assert [p["status"] for p in body["path"]] == ["ok"] * 4
    # n8n (150 ms, failing once) is the bottleneck; on a loaded machine phoenix's first call
    # can reach 0.7x of it too (measured at load 20 on 2 cores)
    assert "n8n" in body["analysis"]["bottlenecks"]


def test_dashboard_broadcast_reaches_the_configured_sink(standins, reactor_env, monkeypatch):
    standins.configure(FAST)
    monkeypatch.setenv("REACTOR_BROADCAST_URL", standins.base_url + "/_broadcast")
    result, _ = run_trace(rebase_urls(sample_request(), standins.base_url))
    assert result.broadcast_delivered is True
    [sent] = standins.broadcasts()
    assert sent["event"]["event"] == "reactor.trace.completed"
    assert sent["event"]["trace_id"] == result.trace_id
    assert sent["event"]["bottlenecks"] == ["n8n"]


def test_run_logs_tell_the_story(standins, reactor_env):
    standins.configure(FAST)  # n8n fails once, then answers
    result, run_id = run_trace(_sample_with_down("audit", standins))
    logs = run_logs(run_id, expect="trace_hops")
    assert line_with(logs, result.workflow_id, 4, "audit, phoenix | n8n")  # the start order
    for system in ("phoenix", "n8n", "xavos"):
        assert line_with(logs, system, result.results[system].status)
    assert line_with(logs, "n8n", "attempt 1", "HTTP 503")  # the retried failure
    audit = result.results["audit"]
    assert line_with(logs, "audit", audit.status, audit.execution_id, "ConnectError")
    assert line_with(logs, "phoenix -> n8n -> xavos")  # the critical path
    parquet = next(p for p in result.exports if p.endswith(".parquet"))
    assert line_with(logs, "trace_hops", 4, parquet)


def test_artifact_keys_are_stable_across_runs_and_progress_completes(standins, reactor_env):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    standins.configure(FAST)
    run_ids = [run_trace(rebase_urls(sample_request(), standins.base_url))[1] for _ in range(2)]

    async def artifacts():
        async with get_client() as client:
            return await client.read_artifacts(
                artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=run_ids))
            )

    found = asyncio.run(artifacts())
    assert sorted((a.key, a.type) for a in found if a.key) == [
        ("trace-hops", "table"), ("trace-hops", "table"),
        ("trace-summary", "markdown"), ("trace-summary", "markdown"),
    ]  # fmt: skip
    progress = [a for a in found if a.type == "progress"]
    assert len(progress) == 2 and all(float(a.data) == 100.0 for a in progress)


def test_a_trace_check_drained_by_the_swarm_continues_the_drains_trace(standins, tmp_path):
    """One trace from enqueue to the last call: the systems the subflow calls get the drain's
    trace id, and the subflow's root span sits under the swarm task that ran the item."""
    from flows.swarm_coordination import swarm_coordination
    from tasks.swarm.models import SwarmRequest
    from tasks.swarm.queue.enqueue import enqueue

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("REACTOR_COORDINATION_DIR", str(tmp_path / "coordination"))
        mp.setenv("REACTOR_EXPORTS_DIR", str(tmp_path / "exports"))
        settings = get_settings()
        standins.configure(FAST)
        before = len(standins.received())
        systems = rebase_urls(sample_request(), standins.base_url).model_dump(mode="json")
        enqueue(
            [{"work_item_id": "check", "work_type": "trace.check", "payload": systems}], settings
        )
        request = SwarmRequest.model_validate(
            {
                "queue": {"limit": 5, "timeout_s": 120},
                "agents": [{"name": "agent-0", "concurrency": 1}],
                "min_success_rate": 0.0,
                "lease_s": 120,
            }
        )
        result = asyncio.run(swarm_coordination(request))
        spans = read_spans(spans_path(settings))
    assert [e.status for e in result.executions] == ["completed"]
    drain_trace = next(
        s["trace_id"] for s in spans if s["span_attributes"].get("prefect.run.id") == result.run_id
    )
    assert result.telemetry.trace_id == drain_trace
    received = standins.received()[before:]
    assert len(received) >= 4
    assert {r.traceparent.split("-")[1] for r in received} == {drain_trace}
    assert result.executions[0].result["summary"]["trace_id"] == drain_trace
    by_id = {s["span_id"]: s for s in spans}
    root = next(s for s in spans if s["span_attributes"].get("reactor.trace.kind") == "root")
    ancestors, node = [], root
    while node["parent_span_id"] in by_id:
        node = by_id[node["parent_span_id"]]
        ancestors.append(node["operation_name"])
    assert "execute-check" in ancestors


def _trace_check_request():
    """The scheduled `trace-check` deployment's request, from prefect.yaml."""
    import yaml

    from tasks.trace.models import TraceRequest

    spec = yaml.safe_load((Path(__file__).resolve().parents[2] / "prefect.yaml").read_text())
    deployment = next(d for d in spec["deployments"] if d["name"] == "trace-check")
    return TraceRequest.model_validate(deployment["parameters"]["request"])


def test_the_scheduled_check_with_every_system_down_ends_failed_naming_them(reactor_env):
    request = _trace_check_request()
    assert request.enable_fallback  # each down system becomes a labelled simulated result
    down = f"http://127.0.0.1:{free_port()}"
    systems = [s.model_copy(update={"url": down, "retries": 0}) for s in request.systems]
    state = asyncio.run(
        trace_orchestration(request.model_copy(update={"systems": systems}), return_state=True)
    )
    assert state.is_failed()
    with pytest.raises(ServiceUnhealthy) as failed:
        state.result()
    names = sorted(s.name for s in request.systems)
    assert f"{len(names)} of {len(names)} systems were simulated" in str(failed.value)
    assert ", ".join(names) in str(failed.value)
    assert ", ".join(names) in state.message


def test_the_scheduled_check_fails_when_more_than_its_share_was_simulated(standins, reactor_env):
    standins.configure(FAST)
    request = rebase_urls(_trace_check_request(), standins.base_url)
    share = request.max_simulated_share
    assert share is not None and share < 1.0
    down = f"http://127.0.0.1:{free_port()}"
    count = int(share * len(request.systems)) + 1  # just over the share
    names = sorted(s.name for s in request.systems)[:count]
    systems = [
        s.model_copy(update={"url": down, "retries": 0}) if s.name in names else s
        for s in request.systems
    ]
    state = asyncio.run(
        trace_orchestration(request.model_copy(update={"systems": systems}), return_state=True)
    )
    assert state.is_failed() and ", ".join(names) in state.message
