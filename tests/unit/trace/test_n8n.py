"""The n8n system type against a loopback server that answers exactly as a real n8n does
(tests/unit/trace/n8n_like.py): its webhook's answer is the workflow's last node output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tasks.telemetry import configure_telemetry, get_tracer
from tasks.trace.calls import execute_system
from tasks.trace.models import CallContext, SystemSpec
from tasks.tracing import inject_headers, with_baggage, with_tracestate
from tests.unit.trace.n8n_like import run_n8n_like

SAMPLE_WORKFLOW = (
    Path(__file__).resolve().parents[3] / "samples" / "n8n" / "reactor-integration.json"
)


@pytest.fixture
def n8n(reactor_env):
    configure_telemetry(reactor_env)
    with run_n8n_like() as running:
        yield running


def context(tracestate_members: int = 0) -> CallContext:
    with get_tracer().start_as_current_span("root"):
        ctx = with_baggage({"workflow.id": "wf"})
        for i in range(tracestate_members):  # vendors' entries before ours, 24 characters each
            ctx = with_tracestate(f"vendor{i:02d}", "v" * 16, ctx)
        carrier = dict(inject_headers(context=ctx))
    return CallContext(
        workflow_id="wf", correlation_id="coord_1_x", carrier=carrier, enable_fallback=True
    )


def n8n_system(url: str, **fields) -> SystemSpec:
    return SystemSpec.model_validate({"name": "n8n", "type": "n8n", "url": url, **fields})


def test_a_real_n8n_answer_is_a_success_with_an_unknown_execution_id(n8n):
    result = execute_system(n8n_system(n8n.base_url), context(), {})
    assert result.status == "ok" and not result.simulated and result.reason is None
    assert result.response == {"ok": True} and result.execution_id == "unknown"
    assert result.health.healthy and result.health.body == {"status": "ok"}  # GET /healthz
    [webhook], [downstream] = n8n.webhook_headers, n8n.downstream_headers
    _, trace_id, parent, _ = webhook["traceparent"].split("-")
    assert parent == result.attempts[0].span_id  # n8n was called from our attempt span
    _, down_trace, down_parent, _ = downstream["traceparent"].split("-")
    assert down_trace == trace_id == result.trace_id and down_parent != parent


def test_an_execution_id_the_workflow_returns_is_recorded(n8n):
    n8n.reply_with_id = True
    result = execute_system(n8n_system(n8n.base_url), context(), {})
    assert result.status == "ok" and result.execution_id == "1"


def test_n8n_defaults_to_its_json_health_endpoint():
    assert n8n_system("http://127.0.0.1:5678").health_url == "http://127.0.0.1:5678/healthz"


def test_n8n_editor_page_is_not_a_health_answer(n8n):
    result = execute_system(n8n_system(n8n.base_url, health_path="/health"), context(), {})
    assert result.status == "simulated" and result.attempts == []
    assert "text/html, not a JSON health document" in result.reason
    assert n8n.webhook_headers == []  # an unhealthy system is not called


def test_long_tracestate_reaches_n8n_truncated_to_512_characters(n8n):
    ctx = context(tracestate_members=30)  # 30 x 24 characters + the root's: over 700
    assert len(ctx.carrier["tracestate"]) <= 512  # the carrier itself was injected truncated
    execute_system(n8n_system(n8n.base_url), ctx, {})
    [webhook], [downstream] = n8n.webhook_headers, n8n.downstream_headers
    assert len(webhook["tracestate"]) <= 512
    assert downstream["tracestate"] == webhook["tracestate"]  # n8n kept and forwarded it
    assert webhook["tracestate"].startswith("vendor29=")  # the newest entries survive


def test_baggage_and_correlation_id_reach_n8n_which_does_not_forward_them(n8n):
    execute_system(n8n_system(n8n.base_url), context(), {})
    [webhook], [downstream] = n8n.webhook_headers, n8n.downstream_headers
    assert webhook["x-correlation-id"] == "coord_1_x" and "baggage" in webhook
    assert "baggage" not in downstream and "x-correlation-id" not in downstream


def test_sample_workflow_forwards_baggage_and_correlation_id_explicitly():
    workflow = json.loads(SAMPLE_WORKFLOW.read_text(encoding="utf-8"))
    nodes = {n["type"]: n for n in workflow["nodes"]}
    webhook = nodes["n8n-nodes-base.webhook"]["parameters"]
    assert webhook["path"] == "reactor-integration" and webhook["httpMethod"] == "POST"
    request = nodes["n8n-nodes-base.httpRequest"]["parameters"]
    headers = {h["name"]: h["value"] for h in request["headerParameters"]["parameters"]}
    assert headers["baggage"] == "={{ $('Webhook').item.json.headers.baggage }}"
    assert (
        headers["X-Correlation-ID"] == "={{ $('Webhook').item.json.headers['x-correlation-id'] }}"
    )
    assert set(workflow["connections"]) == {n["name"] for n in workflow["nodes"][:-1]}


def test_the_sample_workflow_has_the_id_n8n_import_needs():
    """`n8n import:workflow` stores the file's top-level id (NOT NULL in workflow_entity): the
    sample carries one, in n8n's shape (16 letters and digits)."""
    workflow = json.loads(SAMPLE_WORKFLOW.read_text())
    assert isinstance(workflow.get("id"), str)
    assert len(workflow["id"]) == 16 and workflow["id"].isalnum()
    assert workflow["nodes"] and workflow["connections"]
