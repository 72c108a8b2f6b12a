"""The one telemetry setup (`configure_telemetry`): an OpenTelemetry TracerProvider with

- the span log's JSONL exporter (`tasks/span_log.py`),
- the real OTLP/HTTP exporter when `OTEL_EXPORTER_OTLP_ENDPOINT` (or the traces variant) is set,
- any extra exporter (tests add an InMemorySpanExporter),

every one behind a redacting processor: no exporter sees a known secret in a span's name,
attributes, status description or events (an exception event's message and stacktrace
included). The MeterProvider is installed beside it (`tasks/metrics_setup.py`). Prefect starts
its own flow/task-run spans through the global provider, so spans made here inside a task are
children of the task-run span.
"""

from __future__ import annotations

import threading

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import Event, ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.trace import Link, Status

from tasks.metrics_setup import configure_metrics
from tasks.otel_env import VERSION, otlp_configured, process_resource
from tasks.redaction import install_log_redaction, known_secrets, redact, redact_text
from tasks.settings import Settings, get_settings
from tasks.span_log import JsonlSpanExporter, spans_path

_lock = threading.Lock()
_provider: TracerProvider | None = None
_jsonl: JsonlSpanExporter | None = None
_extra: list[int] = []


class RedactingSpanProcessor(SpanProcessor):
    """Hands `inner` a copy of each span in which no known secret remains: name, attributes,
    status description, events (an exception event's message and stacktrace) and links."""

    def __init__(self, inner: SpanProcessor) -> None:
        self.inner = inner

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        self.inner.on_start(span, parent_context=parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        self.inner.on_end(redacted_span(span, known_secrets()))

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


def redacted_span(span: ReadableSpan, secrets: list[str]) -> ReadableSpan:
    """`span`, or a copy of it with every known secret (and every value under a sensitive
    attribute name) replaced by [REDACTED]."""
    name = redact_text(span.name, secrets)
    attributes = dict(span.attributes or {})
    clean_attributes = redact(attributes, secrets)
    status = span.status
    if status.description:
        clean = redact_text(status.description, secrets)
        if clean != status.description:
            status = Status(status.status_code, clean)
    events = [
        Event(redact_text(e.name, secrets), redact(dict(e.attributes or {}), secrets), e.timestamp)
        for e in span.events
    ]
    links = [Link(li.context, redact(dict(li.attributes or {}), secrets)) for li in span.links]
    unchanged = (
        name == span.name
        and clean_attributes == attributes
        and status is span.status
        and all(
            (e.name, dict(e.attributes or {})) == (o.name, dict(o.attributes or {}))
            for e, o in zip(events, span.events, strict=True)
        )
        and all(
            dict(li.attributes or {}) == dict(o.attributes or {})
            for li, o in zip(links, span.links, strict=True)
        )
    )
    if unchanged:
        return span
    return ReadableSpan(
        name=name,
        context=span.get_span_context(),
        parent=span.parent,
        resource=span.resource,
        attributes=clean_attributes,
        events=events,
        links=links,
        kind=span.kind,
        status=status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


def configure_telemetry(
    settings: Settings | None = None, extra_exporter: SpanExporter | None = None
) -> TracerProvider:
    """Set up tracing once per process; later calls move the JSONL file to the current
    coordination dir and may add `extra_exporter` (each exporter object is added once).
    Also puts the secret-redacting filter on every log handler configured so far."""
    global _provider, _jsonl
    settings = settings or get_settings()
    install_log_redaction()
    configure_metrics(settings)  # the MeterProvider beside the traces
    with _lock:
        if _provider is None:
            current = trace.get_tracer_provider()
            if isinstance(current, TracerProvider):
                _provider = current
            else:
                _provider = TracerProvider(resource=process_resource(settings))
                trace.set_tracer_provider(_provider)
            if otlp_configured("traces"):
                from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
                    OTLPSpanExporter,
                )

                _provider.add_span_processor(
                    RedactingSpanProcessor(BatchSpanProcessor(OTLPSpanExporter()))
                )
            _jsonl = JsonlSpanExporter(
                spans_path(settings), settings.spans_max_bytes, settings.spans_backups
            )
            _provider.add_span_processor(RedactingSpanProcessor(SimpleSpanProcessor(_jsonl)))
        assert _jsonl is not None
        _jsonl.path = spans_path(settings)
        _jsonl.max_bytes, _jsonl.backups = settings.spans_max_bytes, settings.spans_backups
        if extra_exporter is not None and id(extra_exporter) not in _extra:
            _extra.append(id(extra_exporter))
            _provider.add_span_processor(
                RedactingSpanProcessor(SimpleSpanProcessor(extra_exporter))
            )
        return _provider


def get_tracer(name: str = "reactor") -> trace.Tracer:
    """A tracer of the global provider (a no-op one until a provider is installed)."""
    return trace.get_tracer(name, VERSION)
