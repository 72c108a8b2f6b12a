"""Trace initialisation: the root span, the `coord_<ns>` correlation id, the W3C baggage and
our tracestate entry, serialized into a carrier each step gets a copy of."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry.context import Context
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.trace import (
    NonRecordingSpan,
    SpanContext,
    Status,
    StatusCode,
    TraceFlags,
    get_current_span,
    set_span_in_context,
)

from tasks.ids import new_id
from tasks.telemetry import get_tracer
from tasks.trace.models import (
    SYSTEM_ORIGIN,
    WORKFLOW_TYPE,
    TraceIdentity,
    TraceRequest,
    TraceStart,
)
from tasks.trace.spans import KIND_ATTR
from tasks.tracing import (
    extract_context,
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


def new_identity(parent: SpanContext | None = None) -> TraceIdentity:
    """A run's trace id and correlation id, made once per flow run: a resumed run reads them
    back (a cached task result) so its calls carry the same ids as the dead attempt's.

    A run inside an enclosing trace (`parent` valid: the swarm task's span around a subflow,
    Prefect's flow-run span) continues it, its root a child of `parent`; only a run with no
    parent starts a fresh trace."""
    if parent is not None and parent.is_valid:
        return TraceIdentity(
            trace_id=format_trace_id(parent.trace_id),
            anchor_span_id=format_span_id(parent.span_id),
            correlation_id=new_id("coord"),
        )
    ids = RandomIdGenerator()
    return TraceIdentity(
        trace_id=format_trace_id(ids.generate_trace_id()),
        anchor_span_id=format_span_id(ids.generate_span_id()),
        correlation_id=new_id("coord"),
    )


def enclosing_traceparent() -> str | None:
    """The `traceparent` of the span current here (None outside any trace): what a run
    started here continues."""
    return inject_headers(context=otel_context.get_current()).get("traceparent")


def parent_of(traceparent: str | None) -> SpanContext | None:
    """The span context a `traceparent` names (None when absent or invalid)."""
    if not traceparent:
        return None
    ctx = get_current_span(extract_context({"traceparent": traceparent})).get_span_context()
    return ctx if ctx.is_valid else None


def _anchor(identity: TraceIdentity) -> Context:
    """The context whose (remote) parent fixes the run's trace id for every attempt's root."""
    parent = SpanContext(
        trace_id=int(identity.trace_id, 16),
        span_id=int(identity.anchor_span_id, 16),
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
    )
    return set_span_in_context(NonRecordingSpan(parent))


@contextlib.contextmanager
def open_trace(
    request: TraceRequest, identity: TraceIdentity | None = None
) -> Iterator[TraceStart]:
    """Start the workflow's root span in the trace of `identity` (a fresh one when None) and
    yield the trace; the root span ends when the block does, marked as an error if the block
    raised. Each attempt of a run has a root span of its own, all in the run's one trace."""
    identity = identity or new_identity()
    correlation_id = identity.correlation_id
    baggage = workflow_baggage(request, correlation_id)
    attributes: dict[str, Any] = {
        KIND_ATTR: "root",
        "workflow.id": request.workflow_id,
        "correlation.id": correlation_id,
        "reactor.trace.systems": [s.name for s in request.systems],
    }
    with get_tracer().start_as_current_span(
        f"trace {request.workflow_id}", context=_anchor(identity), attributes=attributes
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
