"""Trace initialisation: the root span, the `coord_<ns>` correlation id, the W3C baggage and
our tracestate entry, serialized into a carrier each step gets a copy of."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

from opentelemetry.trace import Status, StatusCode

from tasks.ids import new_id
from tasks.telemetry import get_tracer
from tasks.trace.models import SYSTEM_ORIGIN, WORKFLOW_TYPE, TraceRequest, TraceStart
from tasks.trace.spans import KIND_ATTR
from tasks.tracing import (
    format_span_id,
    format_trace_id,
    inject_headers,
    with_baggage,
    with_tracestate,
)

TRACESTATE_KEY = "reactor"


def workflow_baggage(request: TraceRequest, correlation_id: str) -> dict[str, str]:
    """User entries plus ours (ours win: receivers rely on them)."""
    return {
        **request.baggage,
        "workflow.id": request.workflow_id,
        "workflow.type": WORKFLOW_TYPE,
        "correlation.id": correlation_id,
        "system.origin": SYSTEM_ORIGIN,
    }


@contextlib.contextmanager
def open_trace(request: TraceRequest) -> Iterator[TraceStart]:
    """Start the workflow's root span (child of whatever span is current, e.g. the Prefect
    flow-run span) and yield the trace; the root span ends when the block does, marked as
    an error if the block raised."""
    correlation_id = new_id("coord")
    baggage = workflow_baggage(request, correlation_id)
    attributes: dict[str, Any] = {
        KIND_ATTR: "root",
        "workflow.id": request.workflow_id,
        "correlation.id": correlation_id,
        "reactor.trace.systems": [s.name for s in request.systems],
    }
    with get_tracer().start_as_current_span(
        f"trace {request.workflow_id}", attributes=attributes
    ) as root:
        ctx = with_tracestate(TRACESTATE_KEY, correlation_id, with_baggage(baggage))
        span_ctx = root.get_span_context()
        start = TraceStart(
            workflow_id=request.workflow_id,
            trace_id=format_trace_id(span_ctx.trace_id),
            root_span_id=format_span_id(span_ctx.span_id),
            correlation_id=correlation_id,
            baggage=baggage,
            carrier=dict(inject_headers(context=ctx)),
            started=time.perf_counter(),
        )
        try:
            yield start
        except BaseException as exc:
            root.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
            raise
