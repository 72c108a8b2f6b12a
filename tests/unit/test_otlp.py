"""OTLP/HTTP: with OTEL_EXPORTER_OTLP_ENDPOINT set, spans reach a collector through the real
OTLP exporter (a loopback HTTP sink stands in for the collector), secrets redacted."""

from __future__ import annotations

import os
import subprocess
import sys

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.loopback import otlp_collector

SCRIPT = """
from opentelemetry.trace import Status, StatusCode
from tasks.telemetry import configure_telemetry, get_tracer
provider = configure_telemetry()
with get_tracer().start_as_current_span("reactor.otlp-check") as span:
    span.set_attribute("llm.prompt", "key sk-ant-otlp-secret-123456")
try:
    with get_tracer().start_as_current_span("reactor.otlp-failure") as span:
        raise RuntimeError("rejected key sk-ant-otlp-secret-123456")
except RuntimeError:
    pass
with get_tracer().start_as_current_span("reactor.otlp-status") as span:
    span.set_status(Status(StatusCode.ERROR, "HTTP 401: bad key sk-ant-otlp-secret-123456"))
provider.force_flush()
"""


def test_spans_reach_an_otlp_http_collector(tmp_path):
    with otlp_collector() as (url, received):
        env = {
            **os.environ,
            "OTEL_EXPORTER_OTLP_ENDPOINT": url,
            "REACTOR_COORDINATION_DIR": str(tmp_path),
            "REACTOR_ANTHROPIC_API_KEY": "sk-ant-otlp-secret-123456",
        }
        subprocess.run([sys.executable, "-c", SCRIPT], env=env, check=True, timeout=60)
    assert received and received[0][0] == "/v1/traces"
    request = ExportTraceServiceRequest.FromString(received[0][1])
    spans = [s for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans]
    span = next(s for s in spans if s.name == "reactor.otlp-check")
    attributes = {a.key: a.value.string_value for a in span.attributes}
    assert attributes["llm.prompt"] == "key [REDACTED]"
    failure = next(s for s in spans if s.name == "reactor.otlp-failure")
    [event] = failure.events
    event_attributes = {a.key: a.value.string_value for a in event.attributes}
    assert event.name == "exception"
    assert event_attributes["exception.message"] == "rejected key [REDACTED]"
    assert "rejected key [REDACTED]" in event_attributes["exception.stacktrace"]
    assert failure.status.message == "RuntimeError: rejected key [REDACTED]"
    status = next(s for s in spans if s.name == "reactor.otlp-status")
    assert status.status.message == "HTTP 401: bad key [REDACTED]"
    assert all(b"sk-ant-otlp-secret" not in body for _, body in received)
