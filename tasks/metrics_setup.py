"""The one MeterProvider setup (`configure_metrics`, called by
`tasks.telemetry.configure_telemetry`), with a reader for each place the numbers go:

- OTLP/HTTP to a collector when `OTEL_EXPORTER_OTLP_ENDPOINT` (or the metrics variant) is set;
- a push of deltas (every 10 s and at exit) to the parent's endpoint when
  `REACTOR_METRICS_PUSH_URL` names one (`tasks.metrics_endpoint.serve_metrics` sets it for the
  processes it starts);
- this process's own measurements, folded into `AGGREGATE` at scrape time (`collect_local`).

The instruments are in `tasks/metrics.py`, which imports only the OTel API.
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from typing import Any

from opentelemetry import metrics
from opentelemetry.sdk.metrics import (
    Counter,
    Histogram,
    MeterProvider,
    ObservableCounter,
    ObservableGauge,
    ObservableUpDownCounter,
    UpDownCounter,
)
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    MetricReader,
    MetricsData,
    PeriodicExportingMetricReader,
)

from tasks.otel_env import otlp_configured, process_resource
from tasks.prometheus_translation import MetricsAggregate
from tasks.settings import Settings, get_settings

log = logging.getLogger(__name__)

PUSH_URL_ENV = "REACTOR_METRICS_PUSH_URL"  # set by serve_metrics() for the processes it starts
PUSH_INTERVAL_MS = 10_000
DELTA = {
    kind: AggregationTemporality.DELTA
    for kind in (
        Counter,
        UpDownCounter,
        Histogram,
        ObservableCounter,
        ObservableUpDownCounter,
        ObservableGauge,
    )
}
AGGREGATE = MetricsAggregate()  # what this process's endpoint shows: its own and its children's

_lock = threading.Lock()
_provider: MeterProvider | None = None


class _LocalReader(MetricReader):
    """This process's own measurements, pulled into the aggregate at scrape time."""

    def __init__(self, aggregate: MetricsAggregate) -> None:
        super().__init__(preferred_temporality=DELTA)
        self.aggregate = aggregate

    def _receive_metrics(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **_):
        if metrics_data is not None:
            self.aggregate.add_metrics_data(metrics_data)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        return None


_local_reader = _LocalReader(AGGREGATE)


def configure_metrics(settings: Settings | None = None) -> MeterProvider | None:
    """Install this process's MeterProvider once (later calls return it). None if another SDK
    provider was installed first (it is left alone)."""
    global _provider
    settings = settings or get_settings()
    with _lock:
        if _provider is not None:
            return _provider
        if isinstance(metrics.get_meter_provider(), MeterProvider):
            log.warning("a MeterProvider was installed before configure_metrics(); left as is")
            return None
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

        readers: list[MetricReader] = [_local_reader]
        if otlp_configured("metrics"):
            readers.append(PeriodicExportingMetricReader(OTLPMetricExporter()))
        if push_url := os.environ.get(PUSH_URL_ENV):
            readers.append(
                PeriodicExportingMetricReader(
                    OTLPMetricExporter(endpoint=push_url, preferred_temporality=DELTA),
                    export_interval_millis=PUSH_INTERVAL_MS,
                )
            )
        resource = process_resource(settings, **{"service.instance.id": uuid.uuid4().hex})
        _provider = MeterProvider(metric_readers=readers, resource=resource)
        metrics.set_meter_provider(_provider)
        return _provider


def collect_local() -> None:
    """Fold this process's measurements since the last call into `AGGREGATE` (nothing before
    `configure_metrics` installed the provider)."""
    if _provider is not None:
        _local_reader.collect()
