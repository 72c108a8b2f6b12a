"""The span log: finished spans as JSON lines in `<coordination_dir>/telemetry_spans.jsonl`,
one `span_record` per line (trace_id, span_id, parent_span_id, operation_name, span_kind, status,
start_time, duration_ms, service, resource_attributes, span_attributes), rotated by size
(`REACTOR_SPANS_MAX_BYTES`, `REACTOR_SPANS_BACKUPS`), and read back (`read_spans`).
`tasks/telemetry.py` puts the exporter behind the provider."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import StatusCode

from tasks.jsonl import iter_lines_backwards
from tasks.logrotate import rotate, rotated, size_of
from tasks.otel_env import VERSION
from tasks.settings import Settings, get_settings
from tasks.tracing import format_span_id, format_trace_id

SPANS_FILE = "telemetry_spans.jsonl"
STATUS_ATTRIBUTE = "reactor.status"  # set to "timeout" to mark a timed-out span


def span_status(span: ReadableSpan) -> str:
    """ok | error | timeout: `reactor.status` when set, else from the status and events."""
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
    """The JSONL record of a finished span (ids as W3C hex, times ISO-8601 UTC)."""
    ctx = span.get_span_context()
    resource = dict(span.resource.attributes) if span.resource else {}
    start, end = span.start_time or 0, span.end_time or span.start_time or 0
    return {
        "trace_id": format_trace_id(ctx.trace_id),
        "span_id": format_span_id(ctx.span_id),
        "parent_span_id": format_span_id(span.parent.span_id) if span.parent else None,
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
    """Appends one JSON record per span (`span_record`); the path can be moved between runs.
    Before a write would take the file past `max_bytes`, it is rotated: `.1` … `.<backups>`
    (the oldest dropped), under a file lock so that processes sharing the file rotate it once."""

    def __init__(self, path: Path, max_bytes: int = 32 * 1024 * 1024, backups: int = 3) -> None:
        self.path = Path(path)
        self.max_bytes, self.backups = max_bytes, backups
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = "".join(json.dumps(span_record(s), default=str) + "\n" for s in spans).encode()
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if size_of(self.path) + len(lines) > self.max_bytes:
                rotate(self.path, len(lines), self.max_bytes, self.backups)
            # one write() per batch on an O_APPEND file: processes never interleave lines
            with open(self.path, "ab") as fh:
                fh.write(lines)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


def spans_path(settings: Settings | None = None) -> Path:
    """The span log of the current (or given) settings' coordination dir."""
    return Path((settings or get_settings()).coordination_dir) / SPANS_FILE


def span_logs(path: Path) -> list[Path]:
    """The span log's generations that exist, newest first: `path`, `path.1`, `path.2`, …"""
    logs = [path] if path.exists() else []
    n = 1
    while (older := rotated(path, n)).exists():
        logs.append(older)
        n += 1
    return logs


# Span records are appended as spans end; across threads and processes an earlier-ending span
# may be written a little later, so a backwards reader looks this far past `since`.
_WRITE_SKEW_NS = 30 * 10**9


def read_spans(
    path: Path, trace_id: str | None = None, since_ns: int | None = None
) -> list[dict[str, Any]]:
    """The span records of the span log `path` and its rotated generations, oldest first
    (optionally one trace's), skipping none silently: a malformed line raises ValueError
    naming the file and line. With `since_ns` (a wall-clock time in ns) only spans that ended
    then or later are returned, and the log is read from its end until the records are older:
    one run's spans cost what that run wrote, not everything ever written."""
    if since_ns is not None:
        return _read_recent(path, trace_id, since_ns)
    records = []
    for log in reversed(span_logs(path)):
        with open(log, encoding="utf-8") as fh:
            for number, line in enumerate(fh, 1):
                if line.strip():
                    record = _span_line(line, log, number)
                    if trace_id is None or record["trace_id"] == trace_id:
                        records.append(record)
    return records


def _read_recent(path: Path, trace_id: str | None, since_ns: int) -> list[dict[str, Any]]:
    since = datetime.fromtimestamp(since_ns / 1e9, tz=UTC)
    horizon = datetime.fromtimestamp((since_ns - _WRITE_SKEW_NS) / 1e9, tz=UTC)
    newest_first = []
    for log in span_logs(path):
        for line in iter_lines_backwards(log):
            record = _span_line(line, log, None)
            ended = datetime.fromisoformat(record.get("end_time") or record["start_time"])
            if ended < horizon:
                return newest_first[::-1]
            if ended >= since and (trace_id is None or record["trace_id"] == trace_id):
                newest_first.append(record)
    return newest_first[::-1]


def _span_line(line: str | bytes, log: Path, number: int | None) -> dict[str, Any]:
    try:
        return json.loads(line)
    except json.JSONDecodeError as exc:
        where = f"{log}:{number}" if number is not None else str(log)
        raise ValueError(f"{where} holds a line that is not a JSON span record ({exc})") from exc
