"""Telemetry: project spans are children of Prefect's task-run spans; the JSONL file holds one
record per span with the documented fields; no span part holds a configured secret."""

from __future__ import annotations

import time

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode
from prefect import flow, task

from tasks.span_log import read_spans, spans_path
from tasks.telemetry import configure_telemetry, get_tracer

SECRET = "sk-ant-secret-value-0123456789"


@pytest.fixture
def memory(reactor_env, monkeypatch):
    monkeypatch.setenv("REACTOR_ANTHROPIC_API_KEY", SECRET)
    exporter = InMemorySpanExporter()
    configure_telemetry(extra_exporter=exporter)
    yield exporter
    exporter.clear()


@task(task_run_name="measure-{name}")
def measure(name: str) -> str:
    with get_tracer().start_as_current_span("reactor.measure") as span:
        span.set_attribute("reactor.item", name)
        span.set_attribute("llm.prompt", f"key={SECRET}")
        span.set_attribute("http.request.header.authorization", "Bearer abc")
    return name


@flow
def traced(names: list[str]) -> list[str]:
    return [measure(n) for n in names]


def test_project_spans_are_children_of_the_task_run_span(memory):
    traced(["a", "b"])
    spans = memory.get_finished_spans()
    by_id = {s.context.span_id: s for s in spans}
    ours = [s for s in spans if s.name == "reactor.measure"]
    assert len(ours) == 2
    for span in ours:
        parent = by_id[span.parent.span_id]
        assert parent.name.startswith("measure-")  # Prefect's task-run span
        assert parent.attributes["prefect.run.type"] == "task"
        assert span.context.trace_id == parent.context.trace_id


def test_no_span_attribute_holds_the_configured_secret(memory, reactor_env):
    traced(["c"])
    for span in memory.get_finished_spans():
        for value in (span.attributes or {}).values():
            assert SECRET not in str(value)
    ours = next(s for s in memory.get_finished_spans() if s.name == "reactor.measure")
    assert ours.attributes["llm.prompt"] == "key=[REDACTED]"
    assert ours.attributes["http.request.header.authorization"] == "[REDACTED]"
    assert SECRET not in spans_path(reactor_env).read_text()


def test_jsonl_records_have_the_spec_fields(memory, reactor_env):
    traced(["d"])
    records = read_spans(spans_path(reactor_env))
    ours = [r for r in records if r["operation_name"] == "reactor.measure"]
    assert ours, "the JSONL file holds the project span"
    record = ours[-1]
    assert set(record) >= {
        "trace_id", "span_id", "parent_span_id", "operation_name", "span_kind", "status",
        "start_time", "duration_ms", "service", "resource_attributes", "span_attributes",
    }  # fmt: skip
    assert len(record["trace_id"]) == 32 and len(record["span_id"]) == 16
    assert record["status"] == "ok" and record["duration_ms"] >= 0
    assert record["start_time"].endswith("+00:00")
    assert record["service"]["name"] == "reactor-flows"
    parent = [r for r in records if r["span_id"] == record["parent_span_id"]]
    assert parent and parent[0]["operation_name"].startswith("measure-")


@task
def log_secret() -> None:
    from prefect import get_run_logger

    get_run_logger().warning("calling Claude with key %s", SECRET)  # tests log WARNING+


@flow
def logs_a_secret() -> None:
    configure_telemetry()
    log_secret()


def test_run_logs_reach_the_server_without_the_secret(memory):
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.logging.handlers import APILogWorker

    state = logs_a_secret(return_state=True)
    APILogWorker.drain_all(timeout=10)

    async def messages() -> list[str]:
        async with get_client() as client:
            logs = await client.read_logs(
                log_filter=LogFilter(
                    flow_run_id=LogFilterFlowRunId(any_=[state.state_details.flow_run_id])
                )
            )
        return [log.message for log in logs]

    text = ""
    for _ in range(50):  # the server persists logs asynchronously
        text = "\n".join(asyncio.run(messages()))
        if "calling Claude" in text:
            break
        time.sleep(0.2)
    assert "calling Claude with key [REDACTED]" in text
    assert SECRET not in text


@task
def fail_with_secret() -> None:
    with get_tracer().start_as_current_span("reactor.leaky") as span:
        span.set_status(Status(StatusCode.ERROR, f"HTTP 401: bad key {SECRET}"))
    raise RuntimeError(f"rejected key {SECRET}")


@flow
def fails_with_secret() -> None:
    fail_with_secret()


def test_status_descriptions_and_exception_events_hold_no_secret(memory, reactor_env):
    fails_with_secret(return_state=True)
    spans = memory.get_finished_spans()
    leaky = next(s for s in spans if s.name == "reactor.leaky")
    assert leaky.status.description == "HTTP 401: bad key [REDACTED]"
    # Prefect's task-run span records the exception as an event and in its status
    task_span = next(s for s in spans if s.name.startswith("fail_with_secret"))
    [event] = [e for e in task_span.events if e.name == "exception"]
    assert event.attributes["exception.message"] == "rejected key [REDACTED]"
    for span in spans:
        assert SECRET not in (span.status.description or "")
        for e in span.events:
            assert all(SECRET not in str(v) for v in (e.attributes or {}).values())
    assert SECRET not in spans_path(reactor_env).read_text()
