"""The one place that touches W3C headers: `traceparent`, `tracestate` and `baggage`.

Built on OpenTelemetry's TraceContext propagator (traceparent parsing: version `ff`, all-zero
ids, upper-case hex, version-00 trailing data are rejected; higher versions are parsed for their
first four fields). This module adds what OTel leaves out or does differently from the specs:

- a duplicated `traceparent` header is invalid (Trace Context §3.2: the receiver starts a new
  trace);
- `tracestate` follows the list rules: invalid members are dropped instead of discarding the whole
  list, a duplicated key keeps its first (leftmost) occurrence, at most 32 members are kept (the
  rightmost are dropped), and our own entry is written leftmost (`with_tracestate`);
- `baggage` is percent-encoded (W3C Baggage §3.2.1.1) rather than form-encoded: OTel's
  `quote_plus` turns a space into `+`, which a W3C receiver reads as a literal plus. Properties
  (`;key=value` after a value) are accepted and dropped on extract.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any
from urllib.parse import quote, unquote

from opentelemetry import baggage as otel_baggage
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.propagators.textmap import (
    CarrierT,
    Getter,
    Setter,
    TextMapPropagator,
    default_setter,
)
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceState
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

MAX_TRACESTATE_MEMBERS = 32
MAX_BAGGAGE_MEMBERS = 180
MAX_BAGGAGE_BYTES = 8192

# W3C Trace Context §3.3.1.3: key = simple-key / multi-tenant-key; value = printable ASCII
# without "," and "=", not ending in a space.
_TS_KEY = r"[a-z][_0-9a-z\-*/]{0,255}|[a-z0-9][_0-9a-z\-*/]{0,240}@[a-z][_0-9a-z\-*/]{0,13}"
_TS_VALUE = r"[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]"
_TS_MEMBER = re.compile(rf"[ \t]*({_TS_KEY})[ \t]*=[ \t]*({_TS_VALUE})[ \t]*")
# RFC 7230 token: what a baggage key may be.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# W3C Baggage baggage-octet, minus "%" (it must encode itself so values roundtrip).
_BAGGAGE_SAFE = "".join(
    chr(c)
    for c in range(0x21, 0x7F)
    if chr(c) not in '"%,;\\'  # excluded by the grammar (and "%", see above)
)


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


# --- tracestate ---------------------------------------------------------------------------


def parse_tracestate(headers: Iterable[str] | str | None) -> TraceState:
    """The tracestate list in `headers` (one or several header values, combined in order):
    invalid members are dropped, a duplicated key keeps its leftmost occurrence, and only the
    leftmost 32 members are kept."""
    if headers is None:
        return TraceState()
    if isinstance(headers, str):
        headers = [headers]
    members: dict[str, str] = {}
    for header in headers:
        for member in header.split(","):
            match = _TS_MEMBER.fullmatch(member)
            if not match or match.group(1) in members:
                continue
            members[match.group(1)] = match.group(2)
            if len(members) == MAX_TRACESTATE_MEMBERS:
                return TraceState(list(members.items()))
    return TraceState(list(members.items()))


def add_tracestate_entry(state: TraceState, key: str, value: str) -> TraceState:
    """`state` with `key=value` as its leftmost member (an older entry for `key` is removed;
    when the list is full, the rightmost member makes room)."""
    if not _TS_MEMBER.fullmatch(f"{key}={value}"):
        raise ValueError(
            f"tracestate entry {key}={value!r} is invalid: key must be lowercase "
            "[a-z0-9_-*/@], value printable ASCII without ',' or '='"
        )
    rest = [(k, v) for k, v in state.items() if k != key]
    return TraceState([(key, value), *rest[: MAX_TRACESTATE_MEMBERS - 1]])


def with_tracestate(key: str, value: str, context: Context | None = None) -> Context:
    """`context` (default: current) whose span context carries `key=value` leftmost in its
    tracestate; spans started under it inherit the new tracestate."""
    ctx = context if context is not None else otel_context.get_current()
    span_ctx = trace.get_current_span(ctx).get_span_context()
    if not span_ctx.is_valid:
        raise ValueError("with_tracestate needs a context with a valid span")
    new = SpanContext(
        trace_id=span_ctx.trace_id,
        span_id=span_ctx.span_id,
        is_remote=span_ctx.is_remote,
        trace_flags=span_ctx.trace_flags,
        trace_state=add_tracestate_entry(span_ctx.trace_state, key, value),
    )
    return trace.set_span_in_context(NonRecordingSpan(new), ctx)


class _TraceContextPropagator(TraceContextTextMapPropagator):
    """OTel's traceparent handling with the tracestate list rules above."""

    def extract(
        self,
        carrier: CarrierT,
        context: Context | None = None,
        getter: Getter[CarrierT] = _GETTER,
    ) -> Context:
        base = context if context is not None else Context()
        ctx = super().extract(carrier, context=base, getter=getter)
        if ctx is base:  # no valid traceparent: nothing was extracted
            return ctx
        span_ctx = trace.get_current_span(ctx).get_span_context()
        state = parse_tracestate(getter.get(carrier, "tracestate"))
        fixed = SpanContext(
            trace_id=span_ctx.trace_id,
            span_id=span_ctx.span_id,
            is_remote=True,
            trace_flags=span_ctx.trace_flags,
            trace_state=state,
        )
        return trace.set_span_in_context(NonRecordingSpan(fixed), base)


# --- baggage ------------------------------------------------------------------------------


def encode_baggage(entries: Mapping[str, object]) -> str:
    """A W3C `baggage` header value: `key=percent-encoded-value` members, within the W3C
    limits (180 members, 8192 bytes); invalid keys are skipped."""
    members: list[str] = []
    size = 0
    for key, value in entries.items():
        if not _TOKEN.fullmatch(str(key)):
            continue
        member = f"{key}={quote(str(value), safe=_BAGGAGE_SAFE)}"
        grown = size + len(member) + (1 if members else 0)
        if len(members) == MAX_BAGGAGE_MEMBERS or grown > MAX_BAGGAGE_BYTES:
            break
        members.append(member)
        size = grown
    return ",".join(members)


def decode_baggage(header: str) -> dict[str, str]:
    """The entries of a `baggage` header value; malformed members are skipped, properties
    dropped, values percent-decoded (UTF-8)."""
    out: dict[str, str] = {}
    if len(header.encode()) > MAX_BAGGAGE_BYTES:
        return out
    for member in header.split(","):
        pair = member.split(";", 1)[0]
        if "=" not in pair:
            continue
        key, value = (part.strip(" \t") for part in pair.split("=", 1))
        if _TOKEN.fullmatch(key) and len(out) < MAX_BAGGAGE_MEMBERS:
            out[key] = unquote(value, errors="strict")
    return out


def is_baggage_key(key: str) -> bool:
    return bool(_TOKEN.fullmatch(key))


class _PercentBaggagePropagator(TextMapPropagator):
    def extract(
        self,
        carrier: CarrierT,
        context: Context | None = None,
        getter: Getter[CarrierT] = _GETTER,
    ) -> Context:
        ctx = context if context is not None else otel_context.get_current()
        values = getter.get(carrier, "baggage")
        if not values:
            return ctx
        try:
            entries = decode_baggage(",".join(values))
        except UnicodeDecodeError:
            return ctx  # not UTF-8 after decoding: the header is malformed, drop it
        for key, value in entries.items():
            ctx = otel_baggage.set_baggage(key, value, context=ctx)
        return ctx

    def inject(
        self,
        carrier: CarrierT,
        context: Context | None = None,
        setter: Setter[CarrierT] = default_setter,
    ) -> None:
        header = encode_baggage(otel_baggage.get_all(context=context))
        if header:
            setter.set(carrier, "baggage", header)

    @property
    def fields(self) -> set[str]:
        return {"baggage"}


PROPAGATOR = CompositePropagator([_TraceContextPropagator(), _PercentBaggagePropagator()])


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
