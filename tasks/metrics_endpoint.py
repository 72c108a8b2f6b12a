"""The MeterProvider setup and the Prometheus endpoint of the long-lived processes (kept apart
from `tasks/metrics.py` so that recording through an instrument imports only the OTel API).

- every process: OTLP/HTTP to a collector when `OTEL_EXPORTER_OTLP_ENDPOINT` (or the metrics
  variant) is set; a push of deltas to the parent's endpoint when `REACTOR_METRICS_PUSH_URL` names
  one; an in-process reader that `serve()` exposes.
- `serve()`: `prometheus_client.start_http_server` on `metrics_host:metrics_port`, plus a
  loopback OTLP/HTTP receiver whose URL goes to the children in `REACTOR_METRICS_PUSH_URL`.
  The endpoint shows the totals of this process and of every child that pushed to it.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from opentelemetry import metrics
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.exporter.prometheus._mapping import (
    map_unit,
    sanitize_attribute,
    sanitize_full_name,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsPartialSuccess,
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
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
from opentelemetry.sdk.resources import Resource
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.metrics_core import Metric as PrometheusFamily

from tasks.errors import InvalidInput
from tasks.settings import Settings, get_settings

log = logging.getLogger(__name__)

PUSH_URL_ENV = "REACTOR_METRICS_PUSH_URL"  # set by serve_metrics() for the processes it starts
PUSH_INTERVAL_MS = 10_000
_DELTA = {
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
_CUMULATIVE = 2  # OTLP's AGGREGATION_TEMPORALITY_CUMULATIVE
# A push is a few KiB (deltas of a flow run's instruments); these bounds only stop a runaway or
# hostile sender from filling this process's memory.
MAX_PUSH_BYTES = 4 * 1024 * 1024  # a request body, and the same body decompressed
MAX_SERIES = 10_000  # label sets over all families; points of new series past it are rejected
PUSH_READ_TIMEOUT_S = 10.0  # a sender that stops mid-body frees its thread after this

try:
    _VERSION = version("reactor-flows")
except PackageNotFoundError:  # a source tree that is not installed
    _VERSION = "0.0.0"

_lock = threading.Lock()
_provider: MeterProvider | None = None
_endpoint: MetricsEndpoint | None = None


def _labels(attributes: list[KeyValue]) -> tuple[tuple[str, str], ...]:
    """Prometheus labels of an OTLP point, as the OpenTelemetry Prometheus exporter makes them
    (sanitised keys; non-string values as JSON)."""
    out = {}
    for kv in attributes:
        value = _plain(kv.value)
        out[sanitize_attribute(kv.key)] = value if isinstance(value, str) else json.dumps(value)
    return tuple(sorted(out.items()))


def _plain(value: AnyValue) -> Any:
    which = value.WhichOneof("value")
    if which == "array_value":
        return [_plain(v) for v in value.array_value.values]
    if which == "kvlist_value":
        return {kv.key: _plain(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, which) if which else ""


@dataclass
class _Histogram:
    bounds: tuple[float, ...]
    counts: list[int]
    total: float = 0.0


@dataclass
class _Family:
    kind: str  # counter | gauge (non-monotonic sum or last value) | histogram
    description: str
    unit: str
    series: dict[tuple[tuple[str, str], ...], Any] = field(default_factory=dict)


class MetricsAggregate:
    """Running totals of OTLP *delta* points from any number of processes, rendered as
    Prometheus families. Short-lived processes each push their deltas; a counter here is the
    sum over all of them, a histogram the sum of their buckets. Written here because no
    maintained Python library receives OTLP and re-exposes it for Prometheus (the OpenTelemetry
    Collector does, as a separate Go service)."""

    def __init__(self, max_series: int = MAX_SERIES) -> None:
        self._lock = threading.RLock()
        self._families: dict[str, _Family] = {}
        self._warned: set[str] = set()
        self.max_series = max_series
        self._series = 0  # label sets held, over all families
        self.rejected = 0  # points of this request refused (new series past `max_series`)

    def add_otlp(self, body: bytes) -> int:
        """Add one serialized `ExportMetricsServiceRequest`; returns the points taken."""
        return self.add_request(ExportMetricsServiceRequest.FromString(body))

    def push(self, body: bytes) -> int:
        """Add one serialized request; returns the points refused (new series past the bound)."""
        request = ExportMetricsServiceRequest.FromString(body)
        with self._lock:  # re-entrant: the count read is this request's
            self.add_request(request)
            return self.rejected

    def add_metrics_data(self, data: MetricsData) -> int:
        return self.add_request(encode_metrics(data))

    def add_request(self, request: ExportMetricsServiceRequest) -> int:
        """Add the request's points; `rejected` then says how many were refused (points of new
        series once `max_series` label sets are held)."""
        taken = 0
        with self._lock:
            self.rejected = 0
            for rm in request.resource_metrics:
                for sm in rm.scope_metrics:
                    for metric in sm.metrics:
                        taken += self._add_metric(metric)
            if self.rejected:
                self._skip("new series", f"more than {self.max_series} series held")
        return taken - self.rejected

    def _admit(self, family: _Family, key: tuple[tuple[str, str], ...]) -> bool:
        """Whether a point of series `key` may be added (a known series always may)."""
        if key in family.series:
            return True
        if self._series >= self.max_series:
            self.rejected += 1
            return False
        self._series += 1
        return True

    def _family(self, metric: Any, kind: str) -> _Family:
        family = self._families.get(metric.name)
        if family is None:
            family = _Family(kind=kind, description=metric.description, unit=metric.unit)
            self._families[metric.name] = family
        return family

    def _skip(self, name: str, why: str) -> int:
        if name not in self._warned:
            self._warned.add(name)
            log.warning("metrics relay ignores %s: %s", name, why)
        return 0

    def _add_metric(self, metric: Any) -> int:
        which = metric.WhichOneof("data")
        if which == "sum":
            if metric.sum.aggregation_temporality == _CUMULATIVE:
                return self._skip(metric.name, "cumulative points (push deltas)")
            family = self._family(metric, "counter" if metric.sum.is_monotonic else "gauge")
            for p in metric.sum.data_points:
                key = _labels(p.attributes)
                if not self._admit(family, key):
                    continue
                value = p.as_double if p.WhichOneof("value") == "as_double" else p.as_int
                family.series[key] = family.series.get(key, 0) + value
            return len(metric.sum.data_points)
        if which == "gauge":
            family = self._family(metric, "gauge")
            for p in metric.gauge.data_points:
                key = _labels(p.attributes)
                if not self._admit(family, key):
                    continue
                value = p.as_double if p.WhichOneof("value") == "as_double" else p.as_int
                family.series[key] = value
            return len(metric.gauge.data_points)
        if which == "histogram":
            if metric.histogram.aggregation_temporality == _CUMULATIVE:
                return self._skip(metric.name, "cumulative points (push deltas)")
            family = self._family(metric, "histogram")
            for p in metric.histogram.data_points:
                key, bounds = _labels(p.attributes), tuple(p.explicit_bounds)
                if not self._admit(family, key):
                    continue
                hist = family.series.setdefault(key, _Histogram(bounds, [0] * (len(bounds) + 1)))
                if hist.bounds != bounds:
                    self._skip(metric.name, f"bucket bounds changed to {bounds}")
                    continue
                hist.counts = [a + b for a, b in zip(hist.counts, p.bucket_counts, strict=True)]
                hist.total += p.sum
            return len(metric.histogram.data_points)
        return self._skip(metric.name, f"{which} points are not supported")

    def collect(self) -> Iterator[PrometheusFamily]:
        with self._lock:
            families = [(name, f, dict(f.series)) for name, f in sorted(self._families.items())]
        for name, family, series in families:
            keys = sorted({k for labels in series for k, _ in labels})
            args = {
                "name": sanitize_full_name(name),
                "documentation": family.description,
                "labels": keys,
                "unit": map_unit(family.unit),
            }
            out: PrometheusFamily
            if family.kind == "histogram":
                out = HistogramMetricFamily(**args)
            elif family.kind == "counter":
                out = CounterMetricFamily(**args)
            else:
                out = GaugeMetricFamily(**args)
            for labels, value in series.items():
                row = [dict(labels).get(k, "") for k in keys]
                if isinstance(value, _Histogram):
                    buckets, running = [], 0
                    for bound, count in zip([*value.bounds, "+Inf"], value.counts, strict=True):
                        running += count
                        buckets.append((str(bound), running))
                    out.add_metric(row, buckets=buckets, sum_value=value.total)
                else:
                    out.add_metric(row, value)
            yield out


class _LocalReader(MetricReader):
    """This process's own measurements, pulled into the aggregate at scrape time."""

    def __init__(self, aggregate: MetricsAggregate) -> None:
        super().__init__(preferred_temporality=_DELTA)
        self.aggregate = aggregate

    def _receive_metrics(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **_):
        if metrics_data is not None:
            self.aggregate.add_metrics_data(metrics_data)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        return None


_aggregate = MetricsAggregate()
_local_reader = _LocalReader(_aggregate)


def _otlp_configured() -> bool:
    return bool(
        os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or os.environ.get("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT")
    )


def configure(settings: Settings | None = None) -> MeterProvider | None:
    """Install the MeterProvider once per process (later calls return it): OTLP/HTTP when
    configured, a push to the parent's endpoint when `REACTOR_METRICS_PUSH_URL` names one, and
    the in-process reader `serve_metrics()` exposes. None if another SDK provider was installed
    first (it is left alone)."""
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
        if _otlp_configured():
            readers.append(PeriodicExportingMetricReader(OTLPMetricExporter()))
        if push_url := os.environ.get(PUSH_URL_ENV):
            readers.append(
                PeriodicExportingMetricReader(
                    OTLPMetricExporter(endpoint=push_url, preferred_temporality=_DELTA),
                    export_interval_millis=PUSH_INTERVAL_MS,
                )
            )
        resource = Resource.create(
            {
                "service.name": settings.service_name,
                "service.version": _VERSION,
                "service.instance.id": uuid.uuid4().hex,
            }
        )
        _provider = MeterProvider(metric_readers=readers, resource=resource)
        metrics.set_meter_provider(_provider)
        return _provider


class _Collector:
    def collect(self) -> Iterator[PrometheusFamily]:
        if _provider is not None:
            _local_reader.collect()
        return _aggregate.collect()


class PushRefused(Exception):
    """A push the receiver answers with `status` (4xx) and this message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def body_length(header: str | None, limit: int = MAX_PUSH_BYTES) -> int:
    """The body length a `content-length` header announces: 411 when absent, 400 when not a
    non-negative integer, 413 above `limit`."""
    if header is None:
        raise PushRefused(411, "content-length is required")
    try:
        length = int(header)
    except ValueError:
        raise PushRefused(400, f"content-length {header[:40]!r} is not an integer") from None
    if length < 0:
        raise PushRefused(400, f"content-length {length} is negative")
    if length > limit:
        raise PushRefused(413, f"body of {length} bytes is over the {limit}-byte limit")
    return length


def gunzip_bounded(body: bytes, limit: int = MAX_PUSH_BYTES) -> bytes:
    """`body` decompressed, never more than `limit` bytes of it: 413 past that, 400 when it is
    not gzip."""
    inflate = zlib.decompressobj(wbits=31)  # gzip header and trailer
    try:
        out = inflate.decompress(body, limit + 1)
        if len(out) > limit or inflate.unconsumed_tail:
            raise PushRefused(413, f"body decompresses to over {limit} bytes")
        out += inflate.flush()
    except zlib.error as exc:
        raise PushRefused(400, f"content-encoding gzip but the body is not gzip: {exc}") from None
    if not inflate.eof:
        raise PushRefused(400, "content-encoding gzip but the body is truncated")
    return out


class _PushReceiver(BaseHTTPRequestHandler):
    """OTLP/HTTP (protobuf) metrics from this process's children."""

    timeout = PUSH_READ_TIMEOUT_S  # the socket's: a stalled sender does not hold the thread

    def do_POST(self) -> None:
        if self.path != "/v1/metrics":
            self.send_error(404)
            return
        try:
            body = self.rfile.read(body_length(self.headers.get("content-length")))
            if self.headers.get("content-encoding") == "gzip":
                body = gunzip_bounded(body)
            try:
                rejected = _aggregate.push(body)
            except Exception as exc:  # a malformed body is the sender's problem, not ours
                raise PushRefused(400, f"not an OTLP metrics request: {exc}") from None
        except PushRefused as refused:
            self.close_connection = True  # an unread body must not be taken for a request
            self.send_error(refused.status, str(refused))
            return
        except TimeoutError:
            self.close_connection = True
            return
        response = ExportMetricsServiceResponse()
        if rejected:
            response.partial_success.CopyFrom(
                ExportMetricsPartialSuccess(
                    rejected_data_points=rejected,
                    error_message=f"more than {_aggregate.max_series} series held",
                )
            )
        answer = response.SerializeToString()
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: Any) -> None:
        pass


@dataclass(frozen=True)
class MetricsEndpoint:
    scrape_url: str  # Prometheus text, GET
    push_url: str  # OTLP/HTTP metrics from child processes, POST (loopback)


def serve(settings: Settings | None = None) -> MetricsEndpoint | None:
    """Serve the Prometheus endpoint on `metrics_host:metrics_port` from this (long-lived)
    process, and the loopback OTLP receiver its child processes push to; idempotent. None when
    `REACTOR_METRICS_PORT` is unset."""
    global _endpoint
    settings = settings or get_settings()
    if settings.metrics_port is None:
        return None
    configure(settings)  # before PUSH_URL_ENV is set: this process reads its own
    with _lock:
        if _endpoint is not None:
            return _endpoint
        receiver = ThreadingHTTPServer(("127.0.0.1", 0), _PushReceiver)
        threading.Thread(target=receiver.serve_forever, name="metrics-push", daemon=True).start()
        push_url = f"http://127.0.0.1:{receiver.server_address[1]}/v1/metrics"
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Collector())  # type: ignore[arg-type]
        try:
            server, _ = start_http_server(
                settings.metrics_port, settings.metrics_host, registry=registry
            )
        except OSError as exc:
            receiver.shutdown()
            raise InvalidInput(
                f"cannot serve metrics on {settings.metrics_host}:{settings.metrics_port} "
                f"(REACTOR_METRICS_HOST/REACTOR_METRICS_PORT): {exc}"
            ) from exc
        os.environ[PUSH_URL_ENV] = push_url
        host, port = settings.metrics_host, server.server_port
        _endpoint = MetricsEndpoint(scrape_url=f"http://{host}:{port}/metrics", push_url=push_url)
        log.info("metrics: scrape %s; flow runs push to %s", _endpoint.scrape_url, push_url)
        return _endpoint
