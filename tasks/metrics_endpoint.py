"""The metrics endpoint of a long-lived process (the worker in `deployments/worker.py`,
`make serve`): `serve_metrics()` serves Prometheus on `metrics_host:metrics_port` and a loopback
OTLP/HTTP receiver whose URL goes to the children in `REACTOR_METRICS_PUSH_URL`. The flow runs
execute in short-lived subprocesses, whose own endpoint would vanish with them, so each pushes its
deltas here and the endpoint shows the totals of this process and of every child that pushed.

The receiver takes OTLP/HTTP protobuf only, within bounds that stop a runaway or hostile sender
from filling this process's memory (a push is a few KiB).
"""

from __future__ import annotations

import logging
import os
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsPartialSuccess,
    ExportMetricsServiceResponse,
)
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.metrics_core import Metric as PrometheusFamily
from pydantic import ValidationError

from tasks.errors import InvalidInput
from tasks.metrics_setup import AGGREGATE, PUSH_URL_ENV, collect_local, configure_metrics
from tasks.prometheus_translation import MetricsAggregate
from tasks.settings import Settings, get_settings

log = logging.getLogger(__name__)

MAX_PUSH_BYTES = 4 * 1024 * 1024  # a request body, and the same body decompressed
PUSH_READ_TIMEOUT_S = 10.0  # a sender that stops mid-body frees its thread after this

_lock = threading.Lock()
_endpoint: MetricsEndpoint | None = None


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
    """OTLP/HTTP (protobuf) metrics from this process's children, added into `aggregate`."""

    aggregate: MetricsAggregate
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
                refused = self.aggregate.push(body)
            except Exception as exc:  # a malformed body is the sender's problem, not ours
                raise PushRefused(400, f"not an OTLP metrics request: {exc}") from None
        except PushRefused as refused_push:
            self.close_connection = True  # an unread body must not be taken for a request
            self.send_error(refused_push.status, str(refused_push))
            return
        except TimeoutError:
            self.close_connection = True
            return
        self._answer(refused)

    def _answer(self, refused: int) -> None:
        """200 with an OTLP response, a partial success naming the points refused if any."""
        response = ExportMetricsServiceResponse()
        if refused:
            response.partial_success.CopyFrom(
                ExportMetricsPartialSuccess(
                    rejected_data_points=refused,
                    error_message=f"more than {self.aggregate.max_series} series held",
                )
            )
        body = response.SerializeToString()
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def start_push_receiver(
    aggregate: MetricsAggregate, read_timeout_s: float = PUSH_READ_TIMEOUT_S
) -> ThreadingHTTPServer:
    """The OTLP/HTTP receiver on a free loopback port, serving in a daemon thread, adding what
    it receives into `aggregate`; `shutdown()` stops it."""
    handler = type(
        "PushReceiver", (_PushReceiver,), {"aggregate": aggregate, "timeout": read_timeout_s}
    )
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, name="metrics-push", daemon=True).start()
    return server


class _Collector:
    """This process's totals at scrape time: its own measurements and its children's pushes."""

    def collect(self) -> Iterator[PrometheusFamily]:
        collect_local()
        return AGGREGATE.collect()


@dataclass(frozen=True)
class MetricsEndpoint:
    scrape_url: str  # Prometheus text, GET
    push_url: str  # OTLP/HTTP metrics from child processes, POST (loopback)


def _settings() -> Settings:
    """The environment's settings; InvalidInput naming the variable whose value is wrong (never
    the value: it may be a secret), e.g. `REACTOR_METRICS_PORT=nine`."""
    try:
        return get_settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        message = f"REACTOR_{where.upper()}: {first['msg']}" if where else first["msg"]
        raise InvalidInput(message) from None


def serve_metrics(settings: Settings | None = None) -> MetricsEndpoint | None:
    """Serve the Prometheus endpoint on `metrics_host:metrics_port` from this (long-lived)
    process, and the loopback OTLP receiver its child processes push to; idempotent. None when
    `REACTOR_METRICS_PORT` is unset; InvalidInput when it (or another setting) is invalid or the
    port cannot be bound."""
    global _endpoint
    settings = settings or _settings()
    if settings.metrics_port is None:
        return None
    configure_metrics(settings)  # before PUSH_URL_ENV is set: this process reads its own
    with _lock:
        if _endpoint is not None:
            return _endpoint
        receiver = start_push_receiver(AGGREGATE)
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
