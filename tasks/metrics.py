"""The project's OpenTelemetry metrics: one place that names every instrument, and the one
MeterProvider setup.

Callers record through these module-level instruments (`metrics.export_rows.add(1, {...})`). They
are made from the global meter *proxy*, so recording works before and after
`configure_metrics()` (called by `tasks.telemetry.configure_telemetry()`) installs the
MeterProvider, and costs next to nothing while none is installed. Attribute values are short
identifiers (scenario, system, service, outcome), never payloads or secrets.

Where the numbers go (docs/operations.md has the whole picture):

- OTLP/HTTP to a collector when `OTEL_EXPORTER_OTLP_ENDPOINT` (or the metrics variant) is set,
  from every process;
- a Prometheus endpoint on `REACTOR_METRICS_HOST:REACTOR_METRICS_PORT`, served by the long-lived
  processes that call `serve_metrics()` (the worker in `deployments/worker.py`, `make serve`).
  Their flow runs execute in short-lived subprocesses, whose own endpoint would vanish with them,
  so `serve_metrics()` also listens on a loopback OTLP/HTTP port and names it to its children in
  `REACTOR_METRICS_PUSH_URL`; each child pushes its deltas there (every 10 s and at exit) with
  the real OTLP exporter, and the endpoint shows the totals over every run it executed.

Prometheus names are the OpenTelemetry exporter's: `reactor.export.rows` →
`reactor_export_rows_total`, `reactor.trace.hop.duration` (unit s) →
`reactor_trace_hop_duration_seconds`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from opentelemetry import metrics

if TYPE_CHECKING:
    from opentelemetry.sdk.metrics import MeterProvider

    from tasks.metrics_endpoint import MetricsEndpoint
    from tasks.settings import Settings

_meter = metrics.get_meter("reactor-flows")
# bucket bounds for durations in seconds (the SDK's default bounds, 0–10000, suit milliseconds)
_SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300]
_FRACTION = [0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]

# attributes: scenario, task
task_duration = _meter.create_histogram(
    "reactor.task.duration",
    unit="s",
    description="Wall time of one reactor task",
    explicit_bucket_boundaries_advisory=_SECONDS,
)
# attributes: work_type, outcome = completed|failed|timeout
handler_duration = _meter.create_histogram(
    "reactor.swarm.handler.duration",
    unit="s",
    description="Wall time of one handler attempt",
    explicit_bucket_boundaries_advisory=_SECONDS,
)
# attributes: format, content_type
spr_ratio = _meter.create_histogram(
    "reactor.spr.achieved_ratio",
    unit="1",
    description="Achieved SPR compression ratio (words)",
    explicit_bucket_boundaries_advisory=_FRACTION,
)
spr_quality = _meter.create_histogram(
    "reactor.spr.quality",
    unit="1",
    description="SPR roundtrip quality (0-1)",
    explicit_bucket_boundaries_advisory=_FRACTION,
)
# attributes: system, status = ok|simulated|error
trace_hop_duration = _meter.create_histogram(
    "reactor.trace.hop.duration",
    unit="s",
    description="Latency of one system call",
    explicit_bucket_boundaries_advisory=_SECONDS,
)
# attributes: system
trace_fallbacks = _meter.create_counter(
    "reactor.trace.fallbacks", unit="1", description="Simulated results recorded"
)
# attributes: service, healthy = true|false
health_checks = _meter.create_counter(
    "reactor.health.checks", unit="1", description="Health probes of deployed services"
)
# attributes: service, outcome = restarted|restart_failed (a failed attempt counts too)
restarts = _meter.create_counter(
    "reactor.service.restarts", unit="1", description="Restart attempts by auto-recovery"
)
# attributes: service
time_to_healthy = _meter.create_histogram(
    "reactor.deploy.time_to_healthy",
    unit="s",
    description="Start to first healthy answer",
    explicit_bucket_boundaries_advisory=_SECONDS,
)
# attributes: dataset, format
export_rows = _meter.create_counter(
    "reactor.export.rows", unit="1", description="Rows written to dataset files"
)


def configure_metrics(settings: Settings | None = None) -> MeterProvider | None:
    """Install this process's MeterProvider once (see `tasks.metrics_endpoint.configure`)."""
    from tasks.metrics_endpoint import configure

    return configure(settings)


def serve_metrics(settings: Settings | None = None) -> MetricsEndpoint | None:
    """Serve the Prometheus endpoint from this long-lived process, with the loopback receiver
    its flow-run subprocesses push to (see `tasks.metrics_endpoint.serve`)."""
    from tasks.metrics_endpoint import serve

    return serve(settings)
