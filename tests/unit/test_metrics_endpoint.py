"""The metrics endpoint: deltas pushed by several processes add up and are exposed under the
names, labels and buckets the OpenTelemetry Prometheus exporter gives; the push receiver bounds
what it reads; a bad metrics setting is one `error:` line from every caller."""

from __future__ import annotations

import contextlib
import gzip
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.metrics import Meter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tasks.errors import InvalidInput
from tasks.metrics_endpoint import MAX_PUSH_BYTES, serve_metrics, start_push_receiver
from tasks.metrics_setup import DELTA
from tasks.prometheus_translation import MetricsAggregate

ROOT = Path(__file__).resolve().parents[2]


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


def _process(temporality=DELTA):
    """A MeterProvider standing for one process, with the project's two kinds of instrument."""
    reader = InMemoryMetricReader(preferred_temporality=temporality)
    meter = MeterProvider(metric_readers=[reader]).get_meter("reactor-flows")
    counter = meter.create_counter("reactor.trace.fallbacks", unit="1")
    bounds = [0.1, 1, 10]
    hist = meter.create_histogram(
        "reactor.trace.hop.duration", explicit_bucket_boundaries_advisory=bounds, unit="s"
    )
    return reader, counter, hist


def test_deltas_from_several_processes_add_up():
    aggregate = MetricsAggregate()
    for simulated in (2, 3):  # two flow-run processes
        reader, counter, hist = _process()
        counter.add(simulated, {"system": "n8n"})
        hist.record(0.5, {"system": "n8n"})
        aggregate.push(encode_metrics(reader.get_metrics_data()).SerializeToString())
        counter.add(1, {"system": "n8n"})  # recorded after the first push
        aggregate.add_metrics_data(reader.get_metrics_data())
    samples = _samples(_text(aggregate))
    assert ("reactor_trace_fallbacks_total", (("system", "n8n"),), 7.0) in samples
    n8n = (("system", "n8n"),)
    assert ("reactor_trace_hop_duration_seconds_count", n8n, 2.0) in samples
    assert ("reactor_trace_hop_duration_seconds_sum", n8n, 1.0) in samples
    assert ("reactor_trace_hop_duration_seconds_bucket", (("le", "1.0"), *n8n), 2.0) in samples
    assert ("reactor_trace_hop_duration_seconds_bucket", (("le", "0.1"), *n8n), 0.0) in samples


@contextlib.contextmanager
def _both_ways() -> Iterator[Meter]:
    """A meter read by the OpenTelemetry Prometheus exporter and, as deltas, by the aggregate;
    at the end of the block both expositions must hold the same samples."""
    registry = CollectorRegistry()
    prometheus = PrometheusMetricReader(
        registry=registry, disable_target_info=True, scope_info_enabled=False
    )
    delta = InMemoryMetricReader(preferred_temporality=DELTA)
    yield MeterProvider(metric_readers=[prometheus, delta]).get_meter("reactor-flows")
    aggregate = MetricsAggregate()
    aggregate.add_metrics_data(delta.get_metrics_data())
    expected = _samples(generate_latest(registry).decode())
    assert expected and _samples(_text(aggregate)) == expected


def test_exposed_like_the_opentelemetry_prometheus_exporter():
    with _both_ways() as meter:
        counter = meter.create_counter("reactor.trace.fallbacks", unit="1", description="Sims")
        hist = meter.create_histogram("reactor.trace.hop.duration", unit="s")
        counter.add(2, {"system": "n8n"})
        counter.add(1, {"system": "xavos"})
        hist.record(0.3, {"system": "n8n"})
        hist.record(7.0, {"system": "n8n"})


def test_odd_names_units_and_keys_are_translated_like_the_exporter():
    with _both_ways() as meter:
        attributes = {"http.status-code": 200, "9lives": "x", "flags": (True, False)}
        for i, unit in enumerate(["ms", "By", "{request}", "m/s", "%", "KiBy/h", "w@tt$", "/s"]):
            meter.create_counter(f"reactor.unit-{i}", unit=unit).add(i + 1, attributes)
        meter.create_up_down_counter("reactor.queue/depth", unit="1").add(-3, {"a b": "c"})
        meter.create_histogram("reactor.size", unit="KiBy").record(5, attributes)


def test_cumulative_points_are_not_added_twice():
    aggregate = MetricsAggregate()
    cumulative = dict.fromkeys(DELTA, AggregationTemporality.CUMULATIVE)
    reader, counter, _ = _process(cumulative)
    counter.add(5, {"system": "n8n"})
    aggregate.add_metrics_data(reader.get_metrics_data())
    assert "reactor_trace_fallbacks_total" not in _text(aggregate)


# --- the push receiver over loopback HTTP: bad bodies get a 4xx answer, sizes are bounded ---


@pytest.fixture
def receiver():
    """The push receiver on a loopback port, over a fresh aggregate of at most 2 series."""
    aggregate = MetricsAggregate(max_series=2)
    server = start_push_receiver(aggregate, read_timeout_s=1.0)
    yield server.server_address[1], aggregate
    server.shutdown()
    server.server_close()


def _raw(port: int, head: bytes, body: bytes = b"") -> bytes:
    """Send a raw request; the whole answer (until the server closes), within 5 s."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(head + b"\r\n" + body)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def _post(port: int, body: bytes, **headers: str) -> bytes:
    lines = [b"POST /v1/metrics HTTP/1.1", b"Host: x"]
    lines += [f"{k.replace('_', '-')}: {v}".encode() for k, v in headers.items()]
    return _raw(port, b"\r\n".join(lines) + b"\r\n", body)


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def _push_body(*systems: str) -> bytes:
    reader, counter, _ = _process()
    for system in systems:
        counter.add(1, {"system": system})
    return encode_metrics(reader.get_metrics_data()).SerializeToString()


def test_a_body_that_is_not_gzip_is_a_400(receiver):
    port, _ = receiver
    body = b"not gzip at all"
    answer = _post(port, body, content_length=str(len(body)), content_encoding="gzip")
    assert _status(answer) == 400


def test_a_negative_or_missing_content_length_is_answered_at_once(receiver):
    port, _ = receiver
    assert _status(_post(port, b"", content_length="-1")) == 400
    assert _status(_post(port, b"", content_length="lots")) == 400
    assert _status(_post(port, b"")) == 411


def test_bodies_over_the_limit_are_413_compressed_or_not(receiver):
    port, aggregate = receiver
    over = MAX_PUSH_BYTES + 1
    assert _status(_post(port, b"", content_length=str(over))) == 413  # nothing read
    bomb = gzip.compress(b"\0" * over)  # a few KiB that inflate past the limit
    answer = _post(port, bomb, content_length=str(len(bomb)), content_encoding="gzip")
    assert _status(answer) == 413
    good = gzip.compress(_push_body("n8n"))
    answer = _post(port, good, content_length=str(len(good)), content_encoding="gzip")
    assert _status(answer) == 200 and "n8n" in _text(aggregate)


def test_a_sender_that_stops_mid_body_frees_its_thread(receiver):
    port, _ = receiver
    # 100 bytes announced, 10 sent: the server gives up after its read timeout and closes
    assert _post(port, b"x" * 10, content_length="100") == b""


def test_series_past_the_bound_are_rejected_as_a_partial_success(receiver):
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
        ExportMetricsServiceResponse,
    )

    port, aggregate = receiver
    body = _push_body("n8n", "xavos", "audit")
    answer = _post(port, body, content_length=str(len(body)))
    assert _status(answer) == 200
    response = ExportMetricsServiceResponse.FromString(answer.split(b"\r\n\r\n", 1)[1])
    assert response.partial_success.rejected_data_points == 1
    held = {s[1] for s in _samples(_text(aggregate)) if s[0] == "reactor_trace_fallbacks_total"}
    assert len(held) == 2
    again = _push_body("n8n")  # a known series still adds up
    assert _status(_post(port, again, content_length=str(len(again)))) == 200
    total = ("reactor_trace_fallbacks_total", (("system", "n8n"),), 2.0)
    assert total in _samples(_text(aggregate))


# --- a bad metrics setting: InvalidInput naming the variable, one `error:` line in every CLI ---


def test_a_metrics_port_that_is_not_a_number_is_invalid_input(monkeypatch):
    monkeypatch.setenv("REACTOR_METRICS_PORT", "nine")
    with pytest.raises(InvalidInput, match="REACTOR_METRICS_PORT") as caught:
        serve_metrics()
    assert "nine" not in str(caught.value)  # the value is never echoed: it may be a secret


@pytest.mark.parametrize("entry_point", ["deployments.serve", "deployments.worker"])
def test_a_bad_metrics_port_is_one_error_line(entry_point):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = str(taken.getsockname()[1])
        for port in ("nine", busy):
            env = {**os.environ, "REACTOR_METRICS_PORT": port}
            done = subprocess.run(
                [sys.executable, "-m", entry_point],
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
                cwd=ROOT,
            )
            assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr
            errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
            assert len(errors) == 1 and "REACTOR_METRICS_PORT" in errors[0], done.stderr


def test_secrets_stay_redacted_while_a_setting_is_invalid(monkeypatch):
    url = "postgresql://reactor:pw-0123456789@127.0.0.1:5432/reactor"
    monkeypatch.setenv("REACTOR_DATABASE_URL", url)
    monkeypatch.setenv("REACTOR_METRICS_PORT", "nine")
    assert "pw-0123456789" not in str(InvalidInput(f"cannot reach {url}"))
