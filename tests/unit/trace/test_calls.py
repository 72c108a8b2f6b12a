"""One system step over real HTTP against the loopback stand-ins (no Prefect)."""

from __future__ import annotations

import time

import httpx
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tasks.errors import ServiceUnhealthy
from tasks.telemetry import configure_telemetry, get_tracer
from tasks.trace.calls import execute_system, execution_id_of
from tasks.trace.models import CallContext, SystemSpec
from tasks.trace.standins import Behaviour, StandinConfig, run_standins
from tasks.tracing import inject_headers
from tests.loopback import free_port

EXPORTER = InMemorySpanExporter()


@pytest.fixture(scope="module")
def standins():
    with run_standins() as running:
        yield running


@pytest.fixture
def spans(reactor_env):
    configure_telemetry(reactor_env, extra_exporter=EXPORTER)
    EXPORTER.clear()
    yield EXPORTER


def behave(standins, **instances: Behaviour) -> None:
    standins.configure(StandinConfig(instances=instances))


def context(fallback: bool = True) -> CallContext:
    with get_tracer().start_as_current_span("root"):
        carrier = dict(inject_headers())
    return CallContext(
        workflow_id="wf", correlation_id="coord_1_x", carrier=carrier, enable_fallback=fallback
    )


def spec(url: str, **fields) -> SystemSpec:
    return SystemSpec.model_validate({"name": "sys", "type": "phoenix", "url": url, **fields})


def test_call_carries_trace_headers_and_upstream_results(standins, spans):
    behave(standins)
    ctx = context()
    up = execute_system(spec(standins.url("up"), name="up"), ctx, {})
    result = execute_system(spec(standins.url("down"), name="down", type="n8n"), ctx, {"up": up})
    assert result.status == "ok" and result.execution_id.startswith("n8n_")
    got = standins.received("down")[0]
    assert got.path == "/down/webhook/reactor-integration"
    assert got.upstream == ["up"] and got.correlation_id == "coord_1_x"
    assert got.traceparent.split("-")[1] == ctx.carrier["traceparent"].split("-")[1]
    assert got.traceparent.split("-")[2] == result.attempts[0].span_id  # parent = the call span


def test_failed_attempts_are_retried_each_in_a_new_span(standins, spans):
    behave(standins, flaky=Behaviour(fail_first=2))
    result = execute_system(spec(standins.url("flaky"), retries=2), context(), {})
    assert result.status == "ok" and [a.status for a in result.attempts] == ["error", "error", "ok"]
    parents = [r.traceparent.split("-")[2] for r in standins.received("flaky")]
    assert parents == [a.span_id for a in result.attempts] and len(set(parents)) == 3
    assert [a.http_status for a in result.attempts] == [503, 503, 200]


def test_down_system_with_fallback_is_a_labelled_simulation(standins, spans):
    url = f"http://127.0.0.1:{free_port()}"
    result = execute_system(spec(url), context(), {})
    assert result.status == "simulated" and result.simulated
    assert result.response["simulated"] is True
    assert result.execution_id.startswith("fallback_") and result.execution_id[9:].isdigit()
    assert "health check" in result.reason and "ConnectError" in result.reason


def test_down_system_without_fallback_raises_naming_it(standins, spans):
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ServiceUnhealthy, match=r"system 'sys' \(http://127\.0\.0\.1:\d+/api"):
        execute_system(spec(url), context(fallback=False), {})


def test_slow_system_times_out_within_its_budget(standins, spans):
    behave(standins, slow=Behaviour(latency_ms=2000))
    s = spec(standins.url("slow"), timeout_s=0.2, retries=1)
    start = time.perf_counter()
    with pytest.raises(ServiceUnhealthy, match=r"timeout after 0\.2 s"):
        execute_system(s, context(fallback=False), {})
    # two 0.2 s attempts + one backoff delay of at most 0.15 s, plus slack for a busy machine
    assert time.perf_counter() - start < 0.2 * 2 + 0.15 + 0.5
    statuses = [s.attributes.get("reactor.status") for s in spans.get_finished_spans()]
    assert statuses.count("timeout") == 2


@pytest.mark.parametrize("system_type", ["phoenix", "n8n", "xavos", "generic"])
@pytest.mark.parametrize(
    ("answer", "body"),
    [
        ("bare", {"ok": True}),
        ("array", [{"ok": True, "instance": "plain"}]),
        ("text", "done by plain"),
    ],
)
def test_any_2xx_body_is_the_result_with_an_unknown_execution_id(
    standins, spans, system_type, answer, body
):
    behave(standins, plain=Behaviour(answer=answer))
    result = execute_system(spec(standins.url("plain"), type=system_type), context(False), {})
    assert result.status == "ok" and not result.simulated and result.reason is None
    assert result.response == body and result.execution_id == "unknown"
    assert len(result.attempts) == 1


@pytest.mark.parametrize(
    ("system_type", "body", "execution_id"),
    [
        ("n8n", {"executionId": "1234", "ok": True}, "1234"),
        ("n8n", [{"executionId": 77}], "77"),
        ("phoenix", {"execution_id": "phx_1"}, "phx_1"),
        ("xavos", {"coordination_id": "xav_1"}, "xav_1"),
        ("generic", {"executionId": "g1"}, "g1"),
        ("generic", {"execution_id": ""}, "unknown"),
        ("n8n", {"executionId": True}, "unknown"),
    ],
)
def test_execution_id_is_read_from_the_answer_when_there_is_one(system_type, body, execution_id):
    s = spec("http://127.0.0.1:1", type=system_type)
    assert execution_id_of(s, body) == execution_id


def test_client_error_is_not_retried_and_falls_back(standins, spans):
    behave(standins, gone=Behaviour(fail_first=5, failure_status=404))
    result = execute_system(spec(standins.url("gone"), retries=3), context(), {})
    assert result.status == "simulated" and len(result.attempts) == 1
    assert result.reason.startswith("HTTP 404: ") and result.reason.endswith("after 1 attempt(s)")


def test_every_retry_is_reported_before_its_backoff(standins, spans):
    behave(standins, flaky2=Behaviour(fail_first=2))
    heard = []
    result = execute_system(
        spec(standins.url("flaky2"), retries=2),
        context(),
        {},
        on_retry=lambda attempt, delay: heard.append((attempt.attempt, attempt.error, delay)),
    )
    assert result.status == "ok"
    assert [(n, e) for n, e, _ in heard] == [(1, "HTTP 503"), (2, "HTTP 503")]
    assert all(0.0 < d < 1.0 for _, _, d in heard)


def test_unhealthy_system_is_not_called(standins, spans):
    behave(standins, sick=Behaviour(healthy=False))
    result = execute_system(spec(standins.url("sick")), context(), {})
    assert result.status == "simulated" and result.attempts == []
    assert "HTTP 503" in result.reason and standins.received("sick") == []


def test_standins_serve_every_shape_and_record_headers(standins):
    behave(standins)
    with httpx.Client(trust_env=False) as client:
        for path, field in [
            ("/api/reactor/execute", "execution_id"),
            ("/webhook/reactor-integration", "executionId"),
            ("/api/coordination/execute", "coordination_id"),
            ("/api/execute", "execution_id"),
        ]:
            body = client.post(standins.url("shape") + path, json={}).json()
            assert field in body
        assert client.get(standins.base_url + "/health").json()["status"] == "ok"
        assert client.get(standins.url("shape") + "/healthz").json()["status"] == "ok"
        received = client.get(standins.base_url + "/_received?instance=shape").json()
    assert [r["shape"] for r in received] == ["phoenix", "n8n", "xavos", "generic"]


def test_429_retry_after_is_honoured(standins, spans):
    behave(standins, busy=Behaviour(fail_first=1, failure_status=429, retry_after_s=0.4))
    result = execute_system(spec(standins.url("busy"), retries=1), context(), {})
    first, second = standins.received("busy")
    assert [a.http_status for a in result.attempts] == [429, 200]
    assert second.received_at - first.received_at >= 0.4  # not the 0.05-0.15 s backoff


def test_timeout_multiplier_stretches_every_timeout(standins, spans):
    behave(standins, slowish=Behaviour(latency_ms=300))
    s = spec(standins.url("slowish"), timeout_s=0.15, retries=0)
    ctx = context(fallback=False).model_copy(update={"timeout_multiplier": 4.0})
    assert execute_system(s, ctx, {}).status == "ok"  # 0.6 s budget
    with pytest.raises(ServiceUnhealthy, match="timeout"):
        execute_system(s, context(fallback=False), {})  # 0.15 s budget


def test_standins_in_a_child_process_serve_and_stop(spans):
    from tasks.trace.standins import run_standins_process

    with run_standins_process(StandinConfig(instances={"p": Behaviour(fail_first=1)})) as child:
        result = execute_system(spec(child.url("p"), retries=1), context(), {})
        assert [a.http_status for a in result.attempts] == [503, 200]
        got = child.received("p")
        assert [r.traceparent.split("-")[2] for r in got] == [a.span_id for a in result.attempts]
        process = child.process
    assert process.returncode == 0  # stopped when the block ended
