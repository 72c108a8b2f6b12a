"""The project's OpenTelemetry instruments, all named in this one place.

Callers record through these module-level instruments (`metrics.export_rows.add(1, {...})`). They
are made from the global meter *proxy*, so recording works before and after
`tasks.metrics_setup.configure_metrics()` (called by `tasks.telemetry.configure_telemetry()`)
installs the MeterProvider, and costs next to nothing while none is installed; this module
imports only the OTel API. Attribute values are short identifiers (scenario, system, service,
outcome), never payloads or secrets.

Where the numbers go (docs/operations.md has the whole picture): OTLP/HTTP to a collector when
`OTEL_EXPORTER_OTLP_ENDPOINT` is set (`tasks/metrics_setup.py`), and the Prometheus endpoint of
the long-lived processes, which their flow-run subprocesses push to
(`tasks/metrics_endpoint.py`), under the OpenTelemetry exporter's names:
`reactor.export.rows` → `reactor_export_rows_total`, `reactor.trace.hop.duration` (unit s) →
`reactor_trace_hop_duration_seconds`.
"""

from __future__ import annotations

from opentelemetry import metrics

_meter = metrics.get_meter("reactor-flows")
# bucket bounds for durations in seconds (the SDK's default bounds, 0–10000, suit milliseconds)
_SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300]
_FRACTION = [0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]


def _histogram(name: str, description: str, unit: str = "s") -> metrics.Histogram:
    """A histogram of seconds (unit s) or of fractions (unit 1), with buckets that suit it."""
    bounds = _SECONDS if unit == "s" else _FRACTION
    return _meter.create_histogram(
        name, unit=unit, description=description, explicit_bucket_boundaries_advisory=bounds
    )


def _counter(name: str, description: str) -> metrics.Counter:
    return _meter.create_counter(name, unit="1", description=description)


# attributes: scenario, task
task_duration = _histogram("reactor.task.duration", "Wall time of one reactor task")
# attributes: work_type, outcome = completed|failed|timeout
handler_duration = _histogram("reactor.swarm.handler.duration", "Wall time of one handler attempt")
# attributes: format, content_type
spr_ratio = _histogram("reactor.spr.achieved_ratio", "Achieved SPR compression ratio (words)", "1")
spr_quality = _histogram("reactor.spr.quality", "SPR roundtrip quality (0-1)", "1")
# attributes: system, status = ok|simulated|error
trace_hop_duration = _histogram("reactor.trace.hop.duration", "Latency of one system call")
# attributes: system
trace_fallbacks = _counter("reactor.trace.fallbacks", "Simulated results recorded")
# attributes: service, healthy = true|false
health_checks = _counter("reactor.health.checks", "Health probes of deployed services")
# attributes: service, outcome = restarted|restart_failed (a failed attempt counts too)
restarts = _counter("reactor.service.restarts", "Restart attempts by auto-recovery")
# attributes: service
time_to_healthy = _histogram("reactor.deploy.time_to_healthy", "Start to first healthy answer")
# attributes: dataset, format
export_rows = _counter("reactor.export.rows", "Rows written to dataset files")
