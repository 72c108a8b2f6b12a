"""Handlers: built-ins compute correct answers and say when they made their own input;
import-path and HTTP handlers are called for real (the HTTP one with W3C trace headers); a
timed-out attempt is stopped for real and never overlaps its retry; attempts are counted as
they ran and recorded as metrics."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tasks.errors import InvalidInput, ServiceUnhealthy
from tasks.swarm.builtins import BUILTINS
from tasks.swarm.handlers import HandlerRef, import_handler, resolve, run_with_retries
from tasks.swarm.models import HandlerSpec
from tasks.telemetry import configure_telemetry, get_tracer
from tasks.tracing import format_span_id, format_trace_id
from tests import loopback

HANDLERS = "tests.unit.swarm.sample_handlers"
ROOT = Path(__file__).resolve().parents[3]


def _call(task_type: str, payload: dict | None = None, inputs: dict | None = None) -> dict:
    return {
        "task_id": f"{task_type}-1", "type": task_type, "priority": "high",
        "payload": payload or {}, "inputs": inputs or {}, "estimated_duration_ms": 500,
    }  # fmt: skip


def _python(name: str) -> HandlerRef:
    return HandlerRef("python", f"{HANDLERS}:{name}")


def test_knapsack_finds_the_optimum():
    items = [
        {"weight": 10, "value": 60}, {"weight": 20, "value": 100}, {"weight": 30, "value": 120},
        {"weight": 15, "value": 75}, {"weight": 5, "value": 20},
    ]  # fmt: skip
    result = BUILTINS["optimization"](_call("optimization", {"capacity": 50, "items": items}))
    assert result["best_value"] == 255.0  # 10 + 20 + 15 + 5
    assert result["weight_used"] == 50 and result["chosen"] == 4
    assert result["synthetic_input"] is False


def test_analysis_statistics_are_exact_on_given_values():
    result = BUILTINS["analysis"](_call("analysis", {"values": [1, 2, 3, 4, 5]}))
    assert result["mean"] == 3.0 and result["median"] == 3.0 and result["count"] == 5
    assert result["trend_per_sample"] == pytest.approx(1.0)
    assert result["synthetic_input"] is False


def test_a_builtin_without_payload_data_labels_its_result_synthetic():
    assert BUILTINS["analysis"](_call("analysis"))["synthetic_input"] is True
    assert BUILTINS["optimization"](_call("optimization"))["synthetic_input"] is True


def test_coordination_digest_depends_on_inputs_and_validation_checks_it():
    a = BUILTINS["coordination"](_call("coordination", inputs={"x": {"v": 1}}))
    b = BUILTINS["coordination"](_call("coordination", inputs={"x": {"v": 2}}))
    assert a["digest"] != b["digest"] and len(a["digest"]) == 64
    ok = BUILTINS["validation"](_call("validation", inputs={"sync": a}))
    assert ok["inputs_validated"] == 1 and ok["checks"] >= 3
    with pytest.raises(ValueError, match="sync: digest malformed"):
        BUILTINS["validation"](_call("validation", inputs={"sync": {**a, "digest": "bad"}}))


def test_import_path_handler_runs_in_a_worker_process():
    ref = resolve("doubler", {"doubler": HandlerSpec(kind="python", target=f"{HANDLERS}:double")})
    outcome = run_with_retries(ref, _call("doubler", {"values": [1, 2]}), timeout_s=30, retries=0)
    assert outcome.result == {"doubled": [2, 4]} and outcome.attempts == 1
    assert outcome.error is None


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
    ref = resolve("remote", {"remote": HandlerSpec(kind="http", target=echo_server)})
    with get_tracer().start_as_current_span("caller") as span:
        outcome = run_with_retries(ref, _call("remote"), timeout_s=5, retries=0)
    context = span.get_span_context()
    _, trace_id, parent_id, _ = outcome.result["traceparent"].split("-")
    assert outcome.result["task_id"] == "remote-1"
    assert trace_id == format_trace_id(context.trace_id)
    assert parent_id != format_span_id(context.span_id)  # a client span of its own per call


def test_timed_out_handler_is_killed_and_never_overlaps_its_retry(tmp_path):
    call = _call("slow", {"dir": str(tmp_path), "sleep_s": 3.0})
    t0 = time.monotonic()
    outcome = run_with_retries(_python("slow_side_effect"), call, timeout_s=1.0, retries=1)
    assert isinstance(outcome.error, TimeoutError) and outcome.attempts == 2
    assert "timed out after 1 s" in str(outcome.error)
    time.sleep(max(0.0, t0 + 3.5 - time.monotonic()))  # past when attempt 1 would have ended
    marks = sorted(p.name for p in tmp_path.iterdir() if p.name != "busy.lock")
    assert marks == ["start-1", "start-2"]  # both ran, neither reached its side effect
    started = [float((tmp_path / f"start-{n}").read_text()) for n in (1, 2)]
    assert started[1] - started[0] >= 1.0  # the retry began after the first was stopped


def test_in_a_thread_a_timed_out_attempt_is_awaited_before_its_retry(tmp_path):
    call = _call("slow", {"dir": str(tmp_path), "sleep_s": 0.6})
    outcome = run_with_retries(
        _python("slow_side_effect"), call, timeout_s=0.2, retries=1, isolation="thread"
    )
    assert isinstance(outcome.error, TimeoutError) and outcome.attempts == 2
    assert not list(tmp_path.glob("overlap-*"))
    first_end = float((tmp_path / "end-1").read_text())
    assert float((tmp_path / "start-2").read_text()) >= first_end


def test_a_failed_attempt_is_retried_and_counted(tmp_path):
    call = _call("flaky", {"dir": str(tmp_path)})
    outcome = run_with_retries(_python("flaky"), call, timeout_s=30, retries=2)
    assert outcome.result == {"attempt": 2} and outcome.attempts == 2
    assert (tmp_path / "attempts").read_text().split() == ["1", "2"]
    assert outcome.errors == ["attempt 1: ConnectionError: first attempt fails"]


def test_rejected_input_is_one_attempt_not_retried():
    outcome = run_with_retries(_python("rejects_input"), _call("strict"), timeout_s=30, retries=3)
    assert isinstance(outcome.error, InvalidInput) and outcome.attempts == 1


def test_every_attempt_of_a_failing_handler_is_counted():
    outcome = run_with_retries(
        _python("always_fails"), _call("doomed"), timeout_s=30, retries=2, backoff_base_s=0.01
    )
    assert isinstance(outcome.error, RuntimeError) and outcome.attempts == 3
    assert len(outcome.errors) == 3


def test_a_handler_process_that_dies_is_a_failed_attempt():
    outcome = run_with_retries(_python("dies"), _call("crash"), timeout_s=30, retries=0)
    assert isinstance(outcome.error, ServiceUnhealthy) and "exit code 3" in str(outcome.error)


def test_every_attempt_is_recorded_in_the_handler_duration_metric(tmp_path):
    # a process of its own: the global MeterProvider can be set once per process
    code = textwrap.dedent(
        f"""
        import json
        from opentelemetry import metrics
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        reader = InMemoryMetricReader()
        metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
        from tasks.swarm.handlers import HandlerRef, run_with_retries
        call = {json.dumps(_call("flaky", {"dir": str(tmp_path)}))}
        ref = HandlerRef("python", "{HANDLERS}:flaky")
        run_with_retries(ref, call, timeout_s=30, retries=1, isolation="thread")
        points = [
            (p.attributes["outcome"], p.count)
            for rm in reader.get_metrics_data().resource_metrics
            for sm in rm.scope_metrics for m in sm.metrics
            if m.name == "reactor.swarm.handler.duration" for p in m.data.data_points
        ]
        print(json.dumps(sorted(points)))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert json.loads(out.stdout.splitlines()[-1]) == [["completed", 1], ["failed", 1]]


def test_shutting_down_the_pools_leaves_no_process_behind():
    import psutil

    from tasks.swarm.handlers import shutdown_pools

    shutdown_pools()
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    outcome = run_with_retries(_python("double"), _call("x", {"values": [1]}), 30, 0, workers=2)
    assert outcome.result == {"doubled": [2]}
    shutdown_pools()
    shutdown_pools()  # idempotent
    assert {p.pid for p in psutil.Process().children(recursive=True)} - before == set()
