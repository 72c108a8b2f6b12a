"""The one place that touches W3C headers: `traceparent`, `tracestate` and `baggage`.

Built on OpenTelemetry's propagators (TraceContextTextMapPropagator, W3CBaggagePropagator),
which implement the W3C parsing rules; this module adds what they leave to the caller:
a duplicated `traceparent` is treated as invalid (W3C Trace Context §3.2: new trace).
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import Any

from opentelemetry import baggage as otel_baggage
from opentelemetry import context as otel_context
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

PROPAGATOR = CompositePropagator([TraceContextTextMapPropagator(), W3CBaggagePropagator()])


def _values(carrier: Any, key: str) -> list[str]:
    """All values of header `key` (case-insensitive) in a dict, httpx/starlette headers, or
    a list of pairs."""
    if hasattr(carrier, "get_list"):  # httpx.Headers
        return list(carrier.get_list(key))
    if hasattr(carrier, "getlist"):  # starlette Headers
        return list(carrier.getlist(key))
    items = carrier.items() if isinstance(carrier, Mapping) else carrier
    out: list[str] = []
    for name, value in items:
        if name.lower() == key:
            out.extend(value if isinstance(value, list) else [value])
    return out


class _HeaderGetter(Getter[Any]):
    def get(self, carrier: Any, key: str) -> list[str] | None:
        values = _values(carrier, key.lower())
        if key.lower() == "traceparent" and len(values) > 1:
            return None  # duplicated traceparent: invalid, so the receiver starts a new trace
        if key.lower() in ("tracestate", "baggage") and len(values) > 1:
            return [",".join(values)]  # W3C: multiple list headers combine in order
        return values or None

    def keys(self, carrier: Any) -> list[str]:
        items = carrier.items() if isinstance(carrier, Mapping) else carrier
        return [name for name, _ in items]


_GETTER = _HeaderGetter()


def inject_headers(
    headers: MutableMapping[str, str] | None = None, context: Context | None = None
) -> MutableMapping[str, str]:
    """Write traceparent, tracestate and baggage for `context` (default: current) into
    `headers` (default: a new dict) and return it."""
    carrier: MutableMapping[str, str] = {} if headers is None else headers
    PROPAGATOR.inject(carrier, context=context)
    return carrier


def extract_context(headers: Any, context: Context | None = None) -> Context:
    """The trace context and baggage carried by incoming `headers`. An invalid or duplicated
    traceparent yields a context without a parent span, so the next span starts a new trace."""
    return PROPAGATOR.extract(headers, context=context, getter=_GETTER)


def with_baggage(entries: Mapping[str, str], context: Context | None = None) -> Context:
    """`context` (default: current) plus baggage `entries`."""
    ctx = context if context is not None else otel_context.get_current()
    for key, value in entries.items():
        ctx = otel_baggage.set_baggage(key, str(value), context=ctx)
    return ctx
