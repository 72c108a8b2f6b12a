"""The one place that touches W3C headers: `traceparent`, `tracestate` and `baggage`, and the
one formatter of trace and span ids (`format_trace_id`, `format_span_id`).

Built on OpenTelemetry's TraceContext propagator (traceparent parsing: version `ff`, all-zero
ids, upper-case hex, version-00 trailing data are rejected; higher versions are parsed for their
first four fields). This module adds what OTel leaves out or does differently from the W3C
Trace Context and Baggage recommendations:

- a duplicated `traceparent` header is invalid: the receiver starts a new trace;
- `tracestate` is parsed by its grammar (`parse_tracestate`): a key is a simple key
  (`[a-z][a-z0-9_*/-]{0,255}`) or a multi-tenant `tenant@system` key (tenant up to 241
  characters, system up to 14), a value is up to 256 printable ASCII characters except `,` and
  `=` whose leading spaces belong to it and which does not end in a space. One invalid member,
  or more than 32 members, invalidates the whole header, which is then not propagated at all
  (never in part). A duplicated key keeps its leftmost occurrence;
- our own entry is written leftmost (`with_tracestate`), and an outgoing `tracestate` is kept
  within 512 characters the way W3C says to truncate: whole entries, those longer than 128
  characters first, then from the right (`truncate_tracestate`);
- `baggage` is percent-encoded rather than form-encoded: OTel's `quote_plus` turns a space into
  `+`, which a W3C receiver reads as a literal plus. Properties (`;key=value` after a value)
  are accepted and dropped on extract.

The conformance is checked by the W3C test suite through `tests/w3c/` (docs/trace.md).
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
from opentelemetry.propagators.textmap import (
    CarrierT,
    Getter,
    Setter,
    default_setter,
)
from opentelemetry.trace import (
    NonRecordingSpan,
    SpanContext,
    TraceState,
    format_span_id,
    format_trace_id,
)
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

__all__ = [
    "PROPAGATOR",
    "InvalidTracestate",
    "add_tracestate_entry",
    "decode_baggage",
    "encode_baggage",
    "extract_context",
    "format_span_id",
    "format_trace_id",
    "inject_headers",
    "is_baggage_key",
    "parse_tracestate",
    "tracestate_members",
    "truncate_tracestate",
    "with_baggage",
    "with_tracestate",
]

MAX_TRACESTATE_MEMBERS = 32
MAX_TRACESTATE_CHARS = 512  # what W3C asks every vendor to propagate (n8n drops longer ones)
LONG_TRACESTATE_ENTRY = 128  # entries longer than this are the first to go when truncating
MAX_BAGGAGE_MEMBERS = 180
MAX_BAGGAGE_BYTES = 8192

# tracestate grammar: key = simple-key / tenant "@" system; value = 0*255(chr) nblk-chr with
# chr = %x20 / nblk-chr and nblk-chr = printable ASCII except space, "," and "=".
# No whitespace around "=": a space after it is the value's own leading space.
_TS_KEY = r"[a-z][_0-9a-z\-*/]{0,255}|[a-z0-9][_0-9a-z\-*/]{0,240}@[a-z][_0-9a-z\-*/]{0,13}"
_TS_VALUE = r"[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]"
_TS_MEMBER = re.compile(rf"[ \t]*({_TS_KEY})=({_TS_VALUE})[ \t]*")
_OWS = " \t"
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


class InvalidTracestate(ValueError):
    """A `tracestate` header that breaks the grammar or the member limit."""


def tracestate_members(headers: Iterable[str] | str) -> list[tuple[str, str]]:
    """The (key, value) members of `headers` (one or several header values, combined in order
    with ","), duplicates dropped after the leftmost. Empty and whitespace-only members are
    allowed; raises InvalidTracestate naming the first invalid member, or for more than 32."""
    combined = headers if isinstance(headers, str) else ",".join(headers)
    members: dict[str, str] = {}
    count = 0
    for member in combined.split(","):
        if not member.strip(_OWS):
            continue
        match = _TS_MEMBER.fullmatch(member)
        if not match:
            raise InvalidTracestate(f"tracestate member {member!r} is not key=value by the grammar")
        count += 1
        if count > MAX_TRACESTATE_MEMBERS:
            raise InvalidTracestate(f"tracestate has more than {MAX_TRACESTATE_MEMBERS} members")
        members.setdefault(match.group(1), match.group(2))
    return list(members.items())


def parse_tracestate(headers: Iterable[str] | str | None) -> TraceState:
    """The tracestate list in `headers`, or an empty one when the header is missing or invalid
    (an invalid tracestate is dropped whole, never propagated in part)."""
    if headers is None:
        return TraceState()
    try:
        return TraceState(tracestate_members(headers))
    except InvalidTracestate:
        return TraceState()


def truncate_tracestate(state: TraceState, limit: int = MAX_TRACESTATE_CHARS) -> TraceState:
    """`state` cut to at most `limit` characters of header, by whole entries: entries longer
    than 128 characters go first (rightmost first), then entries from the right."""
    members = [(k, v) for k, v in state.items()]

    def size() -> int:
        return sum(len(k) + 1 + len(v) for k, v in members) + max(len(members) - 1, 0)

    for index in reversed(range(len(members))):
        if size() <= limit:
            break
        key, value = members[index]
        if len(key) + 1 + len(value) > LONG_TRACESTATE_ENTRY:
            del members[index]
    while members and size() > limit:
        members.pop()
    return TraceState(members)


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
    ctx = _or_current(context)
    span_ctx = trace.get_current_span(ctx).get_span_context()
    if not span_ctx.is_valid:
        raise ValueError("with_tracestate needs a context with a valid span")
    state = add_tracestate_entry(span_ctx.trace_state, key, value)
    return _with_span(ctx, span_ctx, state, remote=span_ctx.is_remote)


def _or_current(context: Context | None) -> Context:
    return context if context is not None else otel_context.get_current()


def _with_span(ctx: Context, span_ctx: SpanContext, state: TraceState, remote: bool) -> Context:
    """`ctx` whose current span is `span_ctx` with tracestate `state` (not recording)."""
    new = SpanContext(
        trace_id=span_ctx.trace_id,
        span_id=span_ctx.span_id,
        is_remote=remote,
        trace_flags=span_ctx.trace_flags,
        trace_state=state,
    )
    return trace.set_span_in_context(NonRecordingSpan(new), ctx)


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


class _W3CPropagator(TraceContextTextMapPropagator):
    """OTel's traceparent handling, with the tracestate rules and percent-encoded baggage
    above."""

    def inject(
        self,
        carrier: CarrierT,
        context: Context | None = None,
        setter: Setter[CarrierT] = default_setter,
    ) -> None:
        span_context = trace.get_current_span(context).get_span_context()
        if span_context.is_valid:
            trace_id = format_trace_id(span_context.trace_id)
            span_id = format_span_id(span_context.span_id)
            flags = f"{span_context.trace_flags:02x}"
            setter.set(carrier, "traceparent", f"00-{trace_id}-{span_id}-{flags}")
            state = truncate_tracestate(span_context.trace_state)
            if state:
                setter.set(carrier, "tracestate", state.to_header())
        header = encode_baggage(otel_baggage.get_all(context=context))
        if header:
            setter.set(carrier, "baggage", header)

    def extract(
        self, carrier: CarrierT, context: Context | None = None, getter: Getter[CarrierT] = _GETTER
    ) -> Context:
        base = context if context is not None else Context()
        ctx = super().extract(carrier, context=base, getter=getter)
        if ctx is not base:  # a valid traceparent was extracted: apply our tracestate rules
            span_ctx = trace.get_current_span(ctx).get_span_context()
            state = parse_tracestate(getter.get(carrier, "tracestate"))
            ctx = _with_span(base, span_ctx, state, remote=True)
        return _extract_baggage(getter.get(carrier, "baggage"), ctx)

    @property
    def fields(self) -> set[str]:
        return {"traceparent", "tracestate", "baggage"}


def _extract_baggage(values: list[str] | None, ctx: Context) -> Context:
    if not values:
        return ctx
    try:
        entries = decode_baggage(",".join(values))
    except UnicodeDecodeError:
        return ctx  # not UTF-8 after decoding: the header is malformed, drop it
    return with_baggage(entries, ctx)


PROPAGATOR = _W3CPropagator()


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
    ctx = _or_current(context)
    for key, value in entries.items():
        ctx = otel_baggage.set_baggage(key, str(value), context=ctx)
    return ctx
