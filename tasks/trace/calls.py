"""One system step of the trace workflow, without Prefect: health check, then the call in its
own CLIENT span (a new parent-id per attempt) with traceparent, tracestate, baggage and
`X-Correlation-ID`, retries with backoff, and the labelled fallback (span layout: spans.py).

What a system answers is taken as it comes: any 2xx body (a JSON object or array, or text) is
the result, and the execution id is read from it when the system put one there. A real n8n
webhook answers its last node's output (e.g. `{"ok": true}`); that is a success, not a
malformed answer.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from tasks import metrics
from tasks.errors import ServiceUnhealthy
from tasks.health import HealthCheck, probe
from tasks.redaction import redact
from tasks.retry import backoff_delays
from tasks.span_log import STATUS_ATTRIBUTE
from tasks.telemetry import get_tracer
from tasks.trace.models import (
    EXECUTION_ID_FIELDS,
    UNKNOWN_EXECUTION,
    Attempt,
    CallContext,
    SystemResult,
    SystemSpec,
)
from tasks.trace.spans import ATTEMPT_ATTR, KIND_ATTR, STATUS_ATTR, SYSTEM_ATTR
from tasks.tracing import extract_context, format_span_id, format_trace_id, inject_headers

CORRELATION_HEADER = "X-Correlation-ID"
RETRY_AFTER_CAP_S = 5.0  # the same cap as the backoff policy (tasks/retry.py)

# Called before each retry with the attempt that failed and the delay about to be slept.
RetryHook = Callable[[Attempt, float], None]

_client_lock = threading.Lock()
_client: httpx.Client | None = None


def shared_client() -> httpx.Client:
    """One pooled client for every step (thread-safe). `trust_env=False`: the systems' URLs
    come from the input, never from proxy environment variables."""
    global _client
    with _client_lock:
        if _client is None:
            _client = httpx.Client(
                trust_env=False,
                limits=httpx.Limits(max_connections=100, max_keepalive_connections=50),
            )
        return _client


class _CallFailed(Exception):
    def __init__(
        self,
        reason: str,
        retryable: bool,
        retry_after_s: float | None = None,
        http_status: int | None = None,
        timed_out: bool = False,
    ):
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.retry_after_s = retry_after_s
        self.http_status = http_status
        self.timed_out = timed_out


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _span_id(span: trace.Span) -> str:
    return format_span_id(span.get_span_context().span_id)


def simulated_result(name: str, reason: str) -> dict[str, Any]:
    """The fallback's answer: labelled as simulated, with the reason and a `fallback_<ms>` id."""
    return {
        "simulated": True,
        "reason": reason,
        "execution_id": f"fallback_{int(time.time() * 1000)}",
        "system": name,
    }


def execution_id_of(spec: SystemSpec, body: Any) -> str:
    """The execution id a system's answer carries (in a JSON object, or the first object of
    an array), by the field names its type uses; UNKNOWN_EXECUTION when there is none."""
    first = body[0] if isinstance(body, list) and body else body
    if isinstance(first, dict):
        for field in EXECUTION_ID_FIELDS[spec.type]:
            value = first.get(field)
            if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
                return str(value)
    return UNKNOWN_EXECUTION


def response_body(response: httpx.Response) -> Any:
    """A 2xx answer as it came: parsed JSON when it says it is JSON and is, else the text."""
    if "json" in response.headers.get("content-type", ""):
        try:
            return response.json()
        except ValueError:
            pass
    return response.text


def check_system_health(spec: SystemSpec, ctx: CallContext, client: httpx.Client) -> HealthCheck:
    """GET the health path in a CLIENT span and judge it by the one health rule
    (tasks/health.py); where the type has a JSON health endpoint, a page is not an answer."""
    url = spec.health_url
    assert url is not None
    attrs = {SYSTEM_ATTR: spec.name, KIND_ATTR: "health", "url.full": url}
    with get_tracer().start_as_current_span(
        f"GET {spec.name} health", kind=SpanKind.CLIENT, attributes=attrs
    ) as span:
        headers = dict(inject_headers())
        headers[CORRELATION_HEADER] = ctx.correlation_id
        timeout = spec.timeout_s * ctx.timeout_multiplier
        health = probe(client, url, timeout, headers, expects_json=spec.health_expects_json)
        if health.status_code is not None:
            span.set_attribute("http.response.status_code", health.status_code)
        if not health.healthy:  # a timeout's detail names it, so the span record says timeout
            span.set_status(Status(StatusCode.ERROR, health.detail))
        return health


def _post(
    spec: SystemSpec, body: dict[str, Any], headers: dict[str, str], timeout: float, client
) -> tuple[int, Any]:
    """POST once; (status code, answer) on a 2xx, else raises _CallFailed."""
    try:
        response = client.post(spec.endpoint, json=body, headers=headers, timeout=timeout)
    except httpx.TimeoutException as exc:
        reason = f"timeout after {timeout:g} s ({type(exc).__name__})"
        raise _CallFailed(reason, True, timed_out=True) from None
    except httpx.HTTPError as exc:
        raise _CallFailed(f"{type(exc).__name__}: {exc or 'no detail'}", True) from None
    code = response.status_code
    if code == 429 or code >= 500:
        raise _CallFailed(f"HTTP {code}", True, _retry_after(response.headers), code)
    if not response.is_success:
        # the answer's text is the remote system's: a secret it echoes goes no further
        raise _CallFailed(f"HTTP {code}: {redact(response.text[:200])}", False, None, code)
    return code, response_body(response)


def _attempt(
    spec: SystemSpec,
    ctx: CallContext,
    body: dict[str, Any],
    number: int,
    client: httpx.Client,
) -> tuple[Attempt, Any, _CallFailed | None]:
    attrs = {
        SYSTEM_ATTR: spec.name,
        KIND_ATTR: "attempt",
        ATTEMPT_ATTR: number,
        "http.request.method": "POST",
        "url.full": spec.endpoint,
        "correlation.id": ctx.correlation_id,
    }
    with get_tracer().start_as_current_span(
        f"POST {spec.name}", kind=SpanKind.CLIENT, attributes=attrs, record_exception=False
    ) as span:
        headers = dict(inject_headers())  # this span's context: a new parent-id per attempt
        headers[CORRELATION_HEADER] = ctx.correlation_id
        timeout = spec.timeout_s * ctx.timeout_multiplier
        start = time.perf_counter()
        failure: _CallFailed | None = None
        answer: Any = None
        http_status: int | None = None
        try:
            http_status, answer = _post(spec, body, headers, timeout, client)
        except _CallFailed as exc:
            failure, http_status = exc, exc.http_status
        duration = (time.perf_counter() - start) * 1000
        status = "ok"
        if http_status is not None:
            span.set_attribute("http.response.status_code", http_status)
        if failure is not None:
            status = "timeout" if failure.timed_out else "error"
            span.set_attribute(STATUS_ATTRIBUTE, status)
            span.set_status(Status(StatusCode.ERROR, failure.reason))
        attempt = Attempt(
            attempt=number,
            span_id=_span_id(span),
            traceparent=headers.get("traceparent", ""),
            status=status,  # type: ignore[arg-type]
            http_status=http_status,
            duration_ms=round(duration, 3),
            error=None if failure is None else failure.reason,
        )
        return attempt, answer, failure


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("retry-after")
    try:
        return min(float(value), RETRY_AFTER_CAP_S) if value is not None else None
    except ValueError:
        return None  # an HTTP-date: fall back to our own backoff


def request_body(
    spec: SystemSpec, ctx: CallContext, upstream: Mapping[str, SystemResult]
) -> dict[str, Any]:
    """What a system receives: the workflow, its payload and the upstream systems' results."""
    return {
        "workflow_id": ctx.workflow_id,
        "correlation_id": ctx.correlation_id,
        "system": spec.name,
        "payload": spec.payload,
        "upstream": {
            name: {
                "status": r.status,
                "execution_id": r.execution_id,
                "simulated": r.simulated,
                "response": r.response,
            }
            for name, r in upstream.items()
        },
    }


def execute_system(
    spec: SystemSpec,
    ctx: CallContext,
    upstream: Mapping[str, SystemResult],
    client: httpx.Client | None = None,
    sleep: Callable[[float], None] = time.sleep,
    on_retry: RetryHook | None = None,
) -> SystemResult:
    """Run one system step under the trace context carried by `ctx`. Returns the real result,
    or with `ctx.enable_fallback` a labelled simulated one; otherwise raises ServiceUnhealthy
    naming the system. `on_retry` hears of every retry before its backoff."""
    client = client or shared_client()
    # attach the carried context (not just pass it as the parent): the SDK builds each span's
    # current context from the *current* one, and baggage must ride along to every call
    token = otel_context.attach(extract_context(ctx.carrier))
    start = time.perf_counter()
    try:
        result = _run_step(spec, ctx, upstream, _Calls(client, sleep, on_retry))
    except ServiceUnhealthy:
        _record(spec, "error", time.perf_counter() - start)
        raise
    finally:
        otel_context.detach(token)
    _record(spec, result.status, result.duration_ms / 1000)
    return result


def _record(spec: SystemSpec, status: str, seconds: float) -> None:
    metrics.trace_hop_duration.record(seconds, {"system": spec.name, "status": status})
    if status == "simulated":
        metrics.trace_fallbacks.add(1, {"system": spec.name})


@dataclass(frozen=True)
class _Calls:
    """How a step reaches its system: the HTTP client, the backoff's sleep, the retry hook."""

    client: httpx.Client
    sleep: Callable[[float], None]
    on_retry: RetryHook | None


def _call_with_retries(
    spec: SystemSpec, ctx: CallContext, body: dict[str, Any], calls: _Calls
) -> tuple[list[Attempt], Any, str | None]:
    """Every attempt, the answer (None when all failed) and the last failure's reason."""
    attempts: list[Attempt] = []
    delays = backoff_delays(tries=spec.retries + 1)  # the one backoff policy (tasks/retry.py)
    for number in range(1, spec.retries + 2):
        attempt, answer, failure = _attempt(spec, ctx, body, number, calls.client)
        attempts.append(attempt)
        if failure is None:
            return attempts, answer, None
        delay = next(delays, None)
        if not failure.retryable or delay is None:
            return attempts, None, f"{failure.reason} after {number} attempt(s)"
        delay = max(delay, failure.retry_after_s or 0.0)
        if calls.on_retry is not None:
            calls.on_retry(attempt, delay)
        calls.sleep(delay)
    raise AssertionError("unreachable: the last attempt returns")


def _run_step(
    spec: SystemSpec, ctx: CallContext, upstream: Mapping[str, SystemResult], calls: _Calls
) -> SystemResult:
    started_at, start = _now_iso(), time.perf_counter()
    attrs = {
        SYSTEM_ATTR: spec.name,
        KIND_ATTR: "system",
        "reactor.trace.system_type": spec.type,
        "reactor.trace.upstream": list(upstream),
        "correlation.id": ctx.correlation_id,
    }
    with get_tracer().start_as_current_span(f"system {spec.name}", attributes=attrs) as span:
        health = check_system_health(spec, ctx, calls.client) if spec.health_url else None
        attempts: list[Attempt] = []
        answer: Any = None
        if health is not None and not health.healthy:
            reason: str | None = f"health check {spec.health_url} failed: {health.detail}"
        else:
            body = request_body(spec, ctx, upstream)
            attempts, answer, reason = _call_with_retries(spec, ctx, body, calls)
        if reason is not None:
            if not ctx.enable_fallback:
                error = ServiceUnhealthy(f"system {spec.name!r} ({spec.endpoint}) failed: {reason}")
                span.set_status(Status(StatusCode.ERROR, str(error)))
                raise error
            answer = simulated_result(spec.name, reason)
            span.set_attribute("reactor.trace.simulated", True)
            span.set_attribute("reactor.trace.reason", reason)
            status, execution_id = "simulated", answer["execution_id"]
        else:
            status, execution_id = "ok", execution_id_of(spec, answer)
        span.set_attribute(STATUS_ATTR, status)
        return SystemResult(
            name=spec.name,
            type=spec.type,
            endpoint=spec.endpoint,
            status=status,
            simulated=status == "simulated",
            reason=reason,
            execution_id=execution_id,
            response=answer,
            upstream=list(upstream),
            health=health,
            attempts=attempts,
            trace_id=format_trace_id(span.get_span_context().trace_id),
            span_id=_span_id(span),
            started_at=started_at,
            finished_at=_now_iso(),
            duration_ms=round((time.perf_counter() - start) * 1000, 3),
        )
