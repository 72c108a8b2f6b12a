"""OTLP delta points → Prometheus: `MetricsAggregate` keeps the running totals of the points any
number of processes pushed and renders them as Prometheus families, under the names, labels and
buckets the OpenTelemetry Prometheus exporter gives (`reactor.export.rows` →
`reactor_export_rows_total`, `reactor.trace.hop.duration` with unit s →
`reactor_trace_hop_duration_seconds`).

Written here because no maintained Python library receives OTLP and re-exposes it for Prometheus
(the OpenTelemetry Collector does, as a separate Go service), and the exporter keeps its name
mapping private: `prometheus_name`, `prometheus_label` and `prometheus_unit` follow the rules
of OTel's "Prometheus and OpenMetrics compatibility" specification that it implements.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality
from opentelemetry.sdk.metrics.export import MetricsData
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.metrics_core import Metric as PrometheusFamily

log = logging.getLogger(__name__)

# Bounds only a runaway or hostile sender reaches (a flow run pushes a few dozen series).
MAX_SERIES = 10_000  # label sets over all families; points of new series past it are refused
_CUMULATIVE = AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE

_NOT_IN_NAME = re.compile(r"[^a-zA-Z0-9:]+")
_NOT_IN_LABEL = re.compile(r"[^a-zA-Z0-9]+")
_ANNOTATION = re.compile(r"{.*}")  # UCUM annotations such as `{requests}` carry no unit
# UCUM unit → Prometheus suffix, as `unit=suffix` words ("1", a plain count or ratio, adds none)
_UNIT_WORDS = (
    "d=days h=hours min=minutes s=seconds ms=milliseconds us=microseconds ns=nanoseconds "
    "By=bytes KiBy=kibibytes MiBy=mebibytes GiBy=gibibytes TiBy=tibibytes KBy=kilobytes "
    "MBy=megabytes GBy=gigabytes TBy=terabytes m=meters V=volts A=amperes J=joules W=watts "
    "g=grams Cel=celsius Hz=hertz 1= %=percent"
)
_PER_UNIT_WORDS = "s=second m=minute h=hour d=day w=week mo=month y=year"  # the `/x` of a unit
_UNITS = dict(word.split("=") for word in _UNIT_WORDS.split())
_PER_UNITS = dict(word.split("=") for word in _PER_UNIT_WORDS.split())


def prometheus_name(name: str) -> str:
    """A metric name as Prometheus allows it: runs of other characters → `_`, no leading digit."""
    if name[:1].isdigit():
        name = "_" + name[1:]
    return _NOT_IN_NAME.sub("_", name)


def prometheus_label(key: str) -> str:
    """An attribute key as a Prometheus label: runs of other characters → `_`, no leading digit."""
    if key[:1].isdigit():
        key = "_" + key[1:]
    return _NOT_IN_LABEL.sub("_", key)


def prometheus_unit(unit: str) -> str:
    """The name suffix for a UCUM unit: `s` → `seconds`, `By` → `bytes`, `1` → none,
    `m/s` → `meters_per_second`; annotations dropped, anything else sanitised."""
    unit = _ANNOTATION.sub("", unit)
    if unit in _UNITS:
        return _UNITS[unit]
    top, per, bottom = unit.partition("/")
    if per and (bottom := _NOT_IN_NAME.sub("_", bottom)):
        top = _NOT_IN_NAME.sub("_", top)
        top = _UNITS.get(top, top)
        bottom = _PER_UNITS.get(bottom, bottom)
        return f"{top}_per_{bottom}" if top else f"per_{bottom}"
    return _NOT_IN_NAME.sub("_", unit).strip("_")


def _labels(attributes: list[KeyValue]) -> tuple[tuple[str, str], ...]:
    """Prometheus labels of an OTLP point (sanitised keys; non-string values as JSON)."""
    out = {}
    for kv in attributes:
        value = _plain(kv.value)
        out[prometheus_label(kv.key)] = value if isinstance(value, str) else json.dumps(value)
    return tuple(sorted(out.items()))


def _plain(value: AnyValue) -> Any:
    which = value.WhichOneof("value")
    if which == "array_value":
        return [_plain(v) for v in value.array_value.values]
    if which == "kvlist_value":
        return {kv.key: _plain(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, which) if which else ""


def _number(point: Any) -> float | int:
    return point.as_double if point.WhichOneof("value") == "as_double" else point.as_int


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
    Prometheus families (`collect`, a prometheus_client collector). Short-lived processes each
    push their deltas; a counter here is the sum over all of them, a histogram the sum of their
    buckets. Cumulative points are skipped (with one warning per metric): adding them would
    count twice."""

    def __init__(self, max_series: int = MAX_SERIES) -> None:
        self._lock = threading.Lock()
        self._families: dict[str, _Family] = {}
        self._warned: set[str] = set()
        self.max_series = max_series
        self._series = 0  # label sets held, over all families

    def push(self, body: bytes) -> int:
        """Add one serialized `ExportMetricsServiceRequest`; returns the points refused."""
        return self.add(ExportMetricsServiceRequest.FromString(body))

    def add_metrics_data(self, data: MetricsData) -> int:
        """Add an SDK reader's points; returns the points refused."""
        return self.add(encode_metrics(data))

    def add(self, request: ExportMetricsServiceRequest) -> int:
        """Add the request's points; returns how many were refused: points of new series once
        `max_series` label sets are held (a known series always adds up)."""
        refused = 0
        with self._lock:
            for rm in request.resource_metrics:
                for sm in rm.scope_metrics:
                    for metric in sm.metrics:
                        refused += self._add_metric(metric)
        if refused:
            self._skip("new series", f"more than {self.max_series} series held")
        return refused

    def _admit(self, family: _Family, key: tuple[tuple[str, str], ...]) -> bool:
        if key in family.series:
            return True
        if self._series >= self.max_series:
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
        """Add one metric's points; the number refused."""
        which = metric.WhichOneof("data")
        data = getattr(metric, which) if which else None
        if which not in ("sum", "gauge", "histogram"):
            return self._skip(metric.name, f"{which} points are not supported")
        if which != "gauge" and data.aggregation_temporality == _CUMULATIVE:
            return self._skip(metric.name, "cumulative points (push deltas)")
        kind = "counter" if which == "sum" and data.is_monotonic else which
        family = self._family(metric, "gauge" if kind == "sum" else kind)
        refused = 0
        for p in data.data_points:
            key = _labels(p.attributes)
            if not self._admit(family, key):
                refused += 1
            elif which == "gauge":
                family.series[key] = _number(p)
            elif which == "sum":
                family.series[key] = family.series.get(key, 0) + _number(p)
            else:
                self._add_buckets(family, metric.name, key, p)
        return refused

    def _add_buckets(self, family: _Family, name: str, key: Any, point: Any) -> None:
        bounds = tuple(point.explicit_bounds)
        hist = family.series.setdefault(key, _Histogram(bounds, [0] * (len(bounds) + 1)))
        if hist.bounds != bounds:
            self._skip(name, f"bucket bounds changed to {bounds}")
            return
        hist.counts = [a + b for a, b in zip(hist.counts, point.bucket_counts, strict=True)]
        hist.total += point.sum

    def collect(self) -> Iterator[PrometheusFamily]:
        with self._lock:
            families = [(name, f, dict(f.series)) for name, f in sorted(self._families.items())]
        for name, family, series in families:
            keys = sorted({k for labels in series for k, _ in labels})
            kind = {"histogram": HistogramMetricFamily, "counter": CounterMetricFamily}.get(
                family.kind, GaugeMetricFamily
            )
            out: PrometheusFamily = kind(
                prometheus_name(name),
                family.description,
                labels=keys,
                unit=prometheus_unit(family.unit),
            )
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
