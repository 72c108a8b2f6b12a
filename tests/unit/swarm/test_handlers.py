"""Handlers: built-ins compute correct answers, import-path and HTTP handlers are called for
real (the HTTP one with W3C trace headers), timeouts and retries behave."""

from __future__ import annotations

import time

import pytest

from tasks.errors import InvalidInput
from tasks.swarm.handlers import (
    BUILTINS,
    call_with_timeout,
    import_handler,
    resolve,
    run_with_retries,
)
from tasks.swarm.models import HandlerSpec
from tasks.telemetry import configure_telemetry, get_tracer
from tests import loopback

FLAKY_CALLS: list[int] = []


def double(call: dict) -> dict:
    """An import-path handler used by these tests and the flow test."""
    return {"doubled": [2 * v for v in call["payload"]["values"]]}


def flaky(call: dict) -> dict:
    FLAKY_CALLS.append(call["attempt"])
    if call["attempt"] == 1:
        raise ConnectionError("first attempt fails")
    return {"attempt": call["attempt"]}


def _call(task_type: str, payload: dict | None = None, inputs: dict | None = None) -> dict:
    return {
        "task_id": f"{task_type}-1", "type": task_type, "priority": "high",
        "payload": payload or {}, "inputs": inputs or {}, "estimated_duration_ms": 500,
    }  # fmt: skip


def test_knapsack_finds_the_optimum():
    items = [
        {"weight": 10, "value": 60}, {"weight": 20, "value": 100}, {"weight": 30, "value": 120},
        {"weight": 15, "value": 75}, {"weight": 5, "value": 20},
    ]  # fmt: skip
    result = BUILTINS["optimization"](_call("optimization", {"capacity": 50, "items": items}))
    assert result["best_value"] == 255.0  # 10 + 20 + 15 + 5
    assert result["weight_used"] == 50 and result["chosen"] == 4


def test_analysis_statistics_are_exact_on_given_values():
    result = BUILTINS["analysis"](_call("analysis", {"values": [1, 2, 3, 4, 5]}))
    assert result["mean"] == 3.0 and result["median"] == 3.0 and result["count"] == 5
    assert result["trend_per_sample"] == pytest.approx(1.0)


def test_coordination_digest_depends_on_inputs_and_validation_checks_it():
    a = BUILTINS["coordination"](_call("coordination", inputs={"x": {"v": 1}}))
    b = BUILTINS["coordination"](_call("coordination", inputs={"x": {"v": 2}}))
    assert a["digest"] != b["digest"] and len(a["digest"]) == 64
    ok = BUILTINS["validation"](_call("validation", inputs={"sync": a}))
    assert ok["inputs_validated"] == 1 and ok["checks"] >= 3
    with pytest.raises(ValueError, match="sync: digest malformed"):
        BUILTINS["validation"](_call("validation", inputs={"sync": {**a, "digest": "bad"}}))


def test_import_path_handler_is_called():
    handler = resolve(
        "doubler", {"doubler": HandlerSpec(kind="python", target=f"{__name__}:double")}, 5
    )
    assert handler(_call("doubler", {"values": [1, 2]})) == {"doubled": [2, 4]}


def test_import_path_errors_name_the_target():
    with pytest.raises(InvalidInput, match=r"'nope\.module:fn' cannot be imported"):
        import_handler("nope.module:fn")
    with pytest.raises(InvalidInput, match="must look like"):
        import_handler("no_colon")


@pytest.fixture
def echo_server():
    with loopback.echo_server("/run") as url:
        yield url


def test_http_handler_posts_with_trace_headers(echo_server, reactor_env):
    configure_telemetry(reactor_env)
    handler = resolve("remote", {"remote": HandlerSpec(kind="http", target=echo_server)}, 5)
    with get_tracer().start_as_current_span("caller") as span:
        # through the timeout thread, as execution calls it: the trace must follow the call
        result, _, _ = run_with_retries(handler, _call("remote"), timeout_s=5, retries=0)
    context = span.get_span_context()
    _, trace_id, parent_id, _ = result["traceparent"].split("-")
    assert result["task_id"] == "remote-1"
    assert trace_id == format(context.trace_id, "032x")
    assert parent_id != format(context.span_id, "016x")  # a client span of its own per call


def test_timeout_is_enforced_per_attempt_and_retried():
    def slow(call):
        time.sleep(1.0)

    t0 = time.perf_counter()
    with pytest.raises(TimeoutError, match=r"timed out after 0\.1 s"):
        run_with_retries(slow, _call("slow"), timeout_s=0.1, retries=1)
    assert time.perf_counter() - t0 < 0.9  # two 0.1 s attempts, not the handler's 1 s


def test_a_failed_attempt_is_retried_and_counted():
    FLAKY_CALLS.clear()
    result, attempts, errors = run_with_retries(flaky, _call("flaky"), timeout_s=2, retries=2)
    assert result == {"attempt": 2} and attempts == 2 and FLAKY_CALLS == [1, 2]
    assert errors == ["attempt 1: ConnectionError: first attempt fails"]


def test_handler_errors_reach_the_caller():
    def broken(call):
        raise KeyError("missing")

    with pytest.raises(KeyError):
        call_with_timeout(broken, _call("broken"), 1)
