"""The one telemetry setup: an OpenTelemetry TracerProvider with

- a JSONL exporter writing SPEC §6 records to `<coordination_dir>/telemetry_spans.jsonl`,
- the real OTLP/HTTP exporter when `OTEL_EXPORTER_OTLP_ENDPOINT` (or the traces variant) is set,
- any extra exporter (tests add an InMemorySpanExporter),

every one behind a redacting processor. Prefect 3.8 starts its own flow/task-run spans through
the global provider, so spans made here inside a task are children of the task-run span.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.trace import StatusCode

from tasks.metrics import configure_metrics
from tasks.redaction import install_log_redaction, known_secrets, redact
from tasks.settings import Settings, get_settings

SPANS_FILE = "telemetry_spans.jsonl"
STATUS_ATTRIBUTE = "reactor.status"  # set to "timeout" to mark a timed-out span

try:
    VERSION = version("reactor-flows")
except PackageNotFoundError:  # running from a source tree that is not installed
    VERSION = "0.0.0"

_lock = threading.Lock()
_provider: TracerProvider | None = None
_jsonl: JsonlSpanExporter | None = None
_extra: list[int] = []


def span_status(span: ReadableSpan) -> str:
    """ok | error | timeout (SPEC §6)."""
    explicit = (span.attributes or {}).get(STATUS_ATTRIBUTE)
    if explicit in ("ok", "error", "timeout"):
        return str(explicit)
    if span.status.status_code is not StatusCode.ERROR:
        return "ok"
    text = (span.status.description or "") + " ".join(
        str(e.attributes.get("exception.type", "")) for e in span.events if e.attributes
    )
    return "timeout" if "timeout" in text.lower() else "error"


def _iso(ns: int | None) -> str | None:
    if ns is None:
        return None
    return datetime.fromtimestamp(ns / 1e9, tz=UTC).isoformat(timespec="microseconds")


def span_record(span: ReadableSpan) -> dict[str, Any]:
    """A SPEC §6 record for a finished span."""
    ctx = span.get_span_context()
    resource = dict(span.resource.attributes) if span.resource else {}
    start, end = span.start_time or 0, span.end_time or span.start_time or 0
    return {
        "trace_id": format(ctx.trace_id, "032x"),
        "span_id": format(ctx.span_id, "016x"),
        "parent_span_id": format(span.parent.span_id, "016x") if span.parent else None,
        "operation_name": span.name,
        "span_kind": span.kind.name.lower(),
        "status": span_status(span),
        "start_time": _iso(start),
        "end_time": _iso(end),
        "duration_ms": round((end - start) / 1e6, 3),
        "service": {
            "name": resource.get("service.name", "reactor-flows"),
            "version": resource.get("service.version", VERSION),
        },
        "resource_attributes": resource,
        "span_attributes": dict(span.attributes or {}),
    }


class JsonlSpanExporter(SpanExporter):
    """Appends one SPEC §6 JSON record per span; the path can be moved between runs."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = "".join(json.dumps(span_record(s), default=str) + "\n" for s in spans)
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # one write() per batch on an O_APPEND file: processes never interleave lines
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(lines)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


class RedactingSpanProcessor(SpanProcessor):
    """Hands `inner` a copy of each span whose attributes hold no known secret."""

    def __init__(self, inner: SpanProcessor) -> None:
        self.inner = inner

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        self.inner.on_start(span, parent_context=parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        attributes = dict(span.attributes or {})
        clean = redact(attributes, known_secrets())
        if clean != attributes:
            span = ReadableSpan(
                name=span.name,
                context=span.get_span_context(),
                parent=span.parent,
                resource=span.resource,
                attributes=clean,
                events=span.events,
                links=span.links,
                kind=span.kind,
                status=span.status,
                start_time=span.start_time,
                end_time=span.end_time,
                instrumentation_scope=span.instrumentation_scope,
            )
        self.inner.on_end(span)

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


def _otlp_configured() -> bool:
    return bool(
        os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
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
    configure_metrics(settings)  # the MeterProvider beside the traces (tasks/metrics.py)
    with _lock:
        if _provider is None:
            current = trace.get_tracer_provider()
            if isinstance(current, TracerProvider):
                _provider = current
            else:
                resource = Resource.create(
                    {"service.name": settings.service_name, "service.version": VERSION}
                )
                _provider = TracerProvider(resource=resource)
                trace.set_tracer_provider(_provider)
            if _otlp_configured():
                from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
                    OTLPSpanExporter,
                )

                _provider.add_span_processor(
                    RedactingSpanProcessor(BatchSpanProcessor(OTLPSpanExporter()))
                )
            _jsonl = JsonlSpanExporter(settings.coordination_dir / SPANS_FILE)
            _provider.add_span_processor(RedactingSpanProcessor(SimpleSpanProcessor(_jsonl)))
        assert _jsonl is not None
        _jsonl.path = Path(settings.coordination_dir) / SPANS_FILE
        if extra_exporter is not None and id(extra_exporter) not in _extra:
            _extra.append(id(extra_exporter))
            _provider.add_span_processor(
                RedactingSpanProcessor(SimpleSpanProcessor(extra_exporter))
            )
        return _provider


def get_tracer(name: str = "reactor") -> trace.Tracer:
    return trace.get_tracer(name, VERSION)


def spans_path(settings: Settings | None = None) -> Path:
    return Path((settings or get_settings()).coordination_dir) / SPANS_FILE


def read_spans(path: Path, trace_id: str | None = None) -> list[dict[str, Any]]:
    """The SPEC §6 records in `path` (optionally one trace's), skipping none silently:
    a malformed line raises ValueError naming the file and line."""
    if not path.exists():
        return []
    records = []
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{number} is not a JSON span record ({exc})") from exc
            if trace_id is None or record["trace_id"] == trace_id:
                records.append(record)
    return records
