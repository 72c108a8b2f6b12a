"""The project's OpenTelemetry metrics: one place that names every instrument.

Callers record through these module-level instruments (`metrics.claims.add(1, {...})`). They
are made from the global meter *proxy*, so recording works before and after
`tasks.telemetry.configure_telemetry()` installs the MeterProvider (OTLP/HTTP when
`OTEL_EXPORTER_OTLP_ENDPOINT` is set, the Prometheus endpoint when `REACTOR_METRICS_PORT` is),
and costs next to nothing while no provider is installed. Attribute values are short
identifiers (scenario, system, service, outcome), never payloads or secrets.

Prometheus names follow from the OTel names: `reactor.claims` → `reactor_claims_total`,
`reactor.trace.hop.duration` (unit s) → `reactor_trace_hop_duration_seconds`.
"""

from __future__ import annotations

from opentelemetry import metrics

_meter = metrics.get_meter("reactor-flows")

# swarm / claim ledger; attributes: outcome = claimed|completed|failed|released|reclaimed|conflict
claims = _meter.create_counter("reactor.claims", unit="1", description="Claim ledger operations")
# attributes: scenario, task
task_duration = _meter.create_histogram(
    "reactor.task.duration", unit="s", description="Wall time of one reactor task"
)
# attributes: work_type, outcome = completed|failed|timeout
handler_duration = _meter.create_histogram(
    "reactor.swarm.handler.duration", unit="s", description="Wall time of one handler attempt"
)
# attributes: format, content_type
spr_ratio = _meter.create_histogram(
    "reactor.spr.achieved_ratio", unit="1", description="Achieved SPR compression ratio (words)"
)
spr_quality = _meter.create_histogram(
    "reactor.spr.quality", unit="1", description="SPR roundtrip quality (0-1)"
)
# attributes: system, status = ok|simulated|error
trace_hop_duration = _meter.create_histogram(
    "reactor.trace.hop.duration", unit="s", description="Latency of one system call"
)
# attributes: system
trace_fallbacks = _meter.create_counter(
    "reactor.trace.fallbacks", unit="1", description="Simulated results recorded"
)
# attributes: service, healthy = true|false
health_checks = _meter.create_counter(
    "reactor.health.checks", unit="1", description="Health probes of deployed services"
)
# attributes: service
restarts = _meter.create_counter(
    "reactor.service.restarts", unit="1", description="Services restarted by auto-recovery"
)
# attributes: service
time_to_healthy = _meter.create_histogram(
    "reactor.deploy.time_to_healthy", unit="s", description="Start to first healthy answer"
)
# attributes: dataset, format
export_rows = _meter.create_counter(
    "reactor.export.rows", unit="1", description="Rows written to dataset files"
)
