"""The metrics endpoint's aggregate: deltas pushed by several processes add up, and they are
exposed under the names, labels and buckets the OpenTelemetry Prometheus exporter gives."""

from __future__ import annotations

from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tasks.metrics_endpoint import _DELTA, MetricsAggregate


class _Exposed:
    def __init__(self, aggregate: MetricsAggregate) -> None:
        self.aggregate = aggregate

    def collect(self):
        return self.aggregate.collect()


def _text(aggregate: MetricsAggregate) -> str:
    registry = CollectorRegistry()
    registry.register(_Exposed(aggregate))
    return generate_latest(registry).decode()


def _samples(text: str) -> set[tuple[str, tuple, float]]:
    return {
        (s.name, tuple(sorted(s.labels.items())), s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if not s.name.endswith("_created")
    }


def _process(temporality=_DELTA):
    """A MeterProvider standing for one process, with the project's two kinds of instrument."""
    reader = InMemoryMetricReader(preferred_temporality=temporality)
    meter = MeterProvider(metric_readers=[reader]).get_meter("reactor-flows")
    counter = meter.create_counter("reactor.claims", unit="1", description="Claim ops")
    hist = meter.create_histogram(
        "reactor.trace.hop.duration",
        unit="s",
        description="Latency",
        explicit_bucket_boundaries_advisory=[0.1, 1, 10],
    )
    return reader, counter, hist


def test_deltas_from_several_processes_add_up():
    aggregate = MetricsAggregate()
    for claimed in (2, 3):  # two flow-run processes
        reader, counter, hist = _process()
        counter.add(claimed, {"outcome": "claimed"})
        hist.record(0.5, {"system": "n8n"})
        aggregate.add_otlp(encode_metrics(reader.get_metrics_data()).SerializeToString())
        counter.add(1, {"outcome": "claimed"})  # recorded after the first push
        aggregate.add_metrics_data(reader.get_metrics_data())
    samples = _samples(_text(aggregate))
    assert ("reactor_claims_total", (("outcome", "claimed"),), 7.0) in samples
    n8n = (("system", "n8n"),)
    assert ("reactor_trace_hop_duration_seconds_count", n8n, 2.0) in samples
    assert ("reactor_trace_hop_duration_seconds_sum", n8n, 1.0) in samples
    assert ("reactor_trace_hop_duration_seconds_bucket", (("le", "1.0"), *n8n), 2.0) in samples
    assert ("reactor_trace_hop_duration_seconds_bucket", (("le", "0.1"), *n8n), 0.0) in samples


def test_exposed_like_the_opentelemetry_prometheus_exporter():
    registry = CollectorRegistry()
    prometheus = PrometheusMetricReader(
        registry=registry, disable_target_info=True, scope_info_enabled=False
    )
    delta = InMemoryMetricReader(preferred_temporality=_DELTA)
    meter = MeterProvider(metric_readers=[prometheus, delta]).get_meter("reactor-flows")
    counter = meter.create_counter("reactor.claims", unit="1", description="Claim ops")
    hist = meter.create_histogram("reactor.trace.hop.duration", unit="s", description="Latency")
    counter.add(2, {"outcome": "claimed"})
    counter.add(1, {"outcome": "completed"})
    hist.record(0.3, {"system": "n8n"})
    hist.record(7.0, {"system": "n8n"})
    aggregate = MetricsAggregate()
    aggregate.add_metrics_data(delta.get_metrics_data())
    assert _samples(_text(aggregate)) == _samples(generate_latest(registry).decode())


def test_cumulative_points_are_not_added_twice():
    aggregate = MetricsAggregate()
    cumulative = dict.fromkeys(_DELTA, AggregationTemporality.CUMULATIVE)
    reader, counter, _ = _process(cumulative)
    counter.add(5, {"outcome": "claimed"})
    assert aggregate.add_metrics_data(reader.get_metrics_data()) == 0
    assert "reactor_claims_total" not in _text(aggregate)
