"""One system step of the trace workflow, without Prefect: health check, then the call in its
own CLIENT span (a new parent-id per attempt) with traceparent, tracestate, baggage and
`X-Correlation-ID`, retries with backoff, and the labelled fallback.

Span layout (all in the workflow's trace):
    system <name>          INTERNAL, child of the root span carried in `CallContext.carrier`
      GET <name> health    CLIENT
      POST <name>          CLIENT, one per attempt
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import httpx
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from tasks.errors import ServiceUnhealthy
from tasks.retry import backoff_delays
from tasks.telemetry import STATUS_ATTRIBUTE, get_tracer
from tasks.trace.models import (
    EXECUTION_ID_FIELDS,
    Attempt,
    CallContext,
    HealthCheck,
    SystemResult,
    SystemSpec,
)
from tasks.tracing import extract_context, inject_headers

SYSTEM_ATTR = "reactor.trace.system"
KIND_ATTR = "reactor.trace.kind"  # system | health | attempt | root | server
CORRELATION_HEADER = "X-Correlation-ID"
RETRY_AFTER_CAP_S = 5.0  # the same cap as the backoff policy (tasks/retry.py)

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
    def __init__(self, reason: str, retryable: bool, retry_after_s: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.retry_after_s = retry_after_s


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _hex_span_id(span: trace.Span) -> str:
    return format(span.get_span_context().span_id, "016x")


def simulated_result(name: str, reason: str) -> dict[str, Any]:
    """The fallback's answer: labelled as simulated, with the reason and a `fallback_<ms>` id."""
    return {
        "simulated": True,
        "reason": reason,
        "execution_id": f"fallback_{int(time.time() * 1000)}",
        "system": name,
    }


def execution_id_of(spec: SystemSpec, body: Any) -> str:
    """The execution id in a system's response, by the shape its type promises."""
    field = EXECUTION_ID_FIELDS[spec.type]
    value = body.get(field) if isinstance(body, dict) else None
    if not isinstance(value, str) or not value:
        shape = type(body).__name__ if not isinstance(body, dict) else sorted(body)[:8]
        raise _CallFailed(
            f"malformed {spec.type} response: expected a non-empty string {field!r}, got {shape}",
            retryable=False,
        )
    return value


def check_health(spec: SystemSpec, ctx: CallContext, client: httpx.Client) -> HealthCheck:
    """GET the health path in a CLIENT span. Healthy = 2xx and, when the body is JSON with a
    `status`, status is ok/healthy."""
    url = spec.health_url
    assert url is not None
    tracer = get_tracer()
    attrs = {SYSTEM_ATTR: spec.name, KIND_ATTR: "health", "url.full": url}
    with tracer.start_as_current_span(
        f"GET {spec.name} health", kind=SpanKind.CLIENT, attributes=attrs
    ) as span:
        headers = dict(inject_headers())
        headers[CORRELATION_HEADER] = ctx.correlation_id
        start = time.perf_counter()
        timeout = spec.timeout_s * ctx.timeout_multiplier
        try:
            response = client.get(url, headers=headers, timeout=timeout)
        except httpx.HTTPError as exc:
            latency = (time.perf_counter() - start) * 1000
            error = f"{type(exc).__name__}: {exc or 'no detail'}"
            span.set_status(Status(StatusCode.ERROR, error))
            if isinstance(exc, httpx.TimeoutException):
                span.set_attribute(STATUS_ATTRIBUTE, "timeout")
            return HealthCheck(healthy=False, latency_ms=latency, error=error)
        latency = (time.perf_counter() - start) * 1000
        span.set_attribute("http.response.status_code", response.status_code)
        healthy, error = response.is_success, None
        if not healthy:
            error = f"HTTP {response.status_code}"
        else:
            try:
                status = response.json().get("status")
            except (ValueError, AttributeError):
                status = None
            if status is not None and str(status).lower() not in ("ok", "healthy"):
                healthy, error = False, f"reported status {status!r}"
        if not healthy:
            span.set_status(Status(StatusCode.ERROR, error))
        return HealthCheck(
            healthy=healthy, status_code=response.status_code, latency_ms=latency, error=error
        )


def _attempt(
    spec: SystemSpec,
    ctx: CallContext,
    body: dict[str, Any],
    number: int,
    client: httpx.Client,
) -> tuple[Attempt, dict[str, Any] | None, _CallFailed | None]:
    tracer = get_tracer()
    attrs = {
        SYSTEM_ATTR: spec.name,
        KIND_ATTR: "attempt",
        "reactor.trace.attempt": number,
        "http.request.method": "POST",
        "url.full": spec.endpoint,
        "correlation.id": ctx.correlation_id,
    }
    with tracer.start_as_current_span(
        f"POST {spec.name}", kind=SpanKind.CLIENT, attributes=attrs, record_exception=False
    ) as span:
        headers = dict(inject_headers())  # this span's context: a new parent-id per attempt
        headers[CORRELATION_HEADER] = ctx.correlation_id
        timeout = spec.timeout_s * ctx.timeout_multiplier
        start = time.perf_counter()
        failure: _CallFailed | None = None
        response_body: dict[str, Any] | None = None
        http_status: int | None = None
        status = "ok"
        try:
            response = client.post(spec.endpoint, json=body, headers=headers, timeout=timeout)
            http_status = response.status_code
            span.set_attribute("http.response.status_code", http_status)
            if response.status_code == 429 or response.status_code >= 500:
                failure = _CallFailed(
                    f"HTTP {response.status_code}", True, _retry_after(response.headers)
                )
            elif not response.is_success:
                failure = _CallFailed(f"HTTP {response.status_code}: {response.text[:200]}", False)
            else:
                try:
                    parsed = response.json()
                except json.JSONDecodeError:
                    raise _CallFailed(
                        f"malformed {spec.type} response: not JSON", retryable=False
                    ) from None
                execution_id_of(spec, parsed)
                response_body = parsed
        except _CallFailed as exc:
            failure = exc
        except httpx.TimeoutException as exc:
            status = "timeout"
            failure = _CallFailed(f"timeout after {timeout:g} s ({type(exc).__name__})", True)
        except httpx.HTTPError as exc:
            failure = _CallFailed(f"{type(exc).__name__}: {exc or 'no detail'}", True)
        duration = (time.perf_counter() - start) * 1000
        if failure is not None:
            status = "timeout" if status == "timeout" else "error"
            span.set_attribute(STATUS_ATTRIBUTE, status)
            span.set_status(Status(StatusCode.ERROR, failure.reason))
        attempt = Attempt(
            attempt=number,
            span_id=_hex_span_id(span),
            traceparent=headers.get("traceparent", ""),
            status=status,  # type: ignore[arg-type]
            http_status=http_status,
            duration_ms=round(duration, 3),
            error=None if failure is None else failure.reason,
        )
        return attempt, response_body, failure


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
    sleep: Any = time.sleep,
) -> SystemResult:
    """Run one system step under the trace context carried by `ctx`. Returns the real result,
    or with `ctx.enable_fallback` a labelled simulated one; otherwise raises ServiceUnhealthy
    naming the system."""
    client = client or shared_client()
    # attach the carried context (not just pass it as the parent): the SDK builds each span's
    # current context from the *current* one, and baggage must ride along to every call
    token = otel_context.attach(extract_context(ctx.carrier))
    try:
        return _run_step(spec, ctx, upstream, client, sleep)
    finally:
        otel_context.detach(token)


def _run_step(
    spec: SystemSpec,
    ctx: CallContext,
    upstream: Mapping[str, SystemResult],
    client: httpx.Client,
    sleep: Any,
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
        health = check_health(spec, ctx, client) if spec.health_url else None
        attempts: list[Attempt] = []
        result: dict[str, Any] | None = None
        reason: str | None = None
        if health is not None and not health.healthy:
            reason = f"health check {spec.health_url} failed: {health.error}"
        else:
            delays = backoff_delays(tries=spec.retries + 1)
            body = request_body(spec, ctx, upstream)
            for number in range(1, spec.retries + 2):
                attempt, result, failure = _attempt(spec, ctx, body, number, client)
                attempts.append(attempt)
                if failure is None:
                    break
                reason = f"{failure.reason} after {number} attempt(s)"
                delay = next(delays, None)
                if not failure.retryable or delay is None:
                    break
                sleep(max(delay, failure.retry_after_s or 0.0))
        if result is None:
            reason = reason or "no response"
            if not ctx.enable_fallback:
                error = ServiceUnhealthy(f"system {spec.name!r} ({spec.endpoint}) failed: {reason}")
                span.set_status(Status(StatusCode.ERROR, str(error)))
                raise error
            result = simulated_result(spec.name, reason)
            span.set_attribute("reactor.trace.simulated", True)
            span.set_attribute("reactor.trace.reason", reason)
            status, execution_id = "simulated", result["execution_id"]
        else:
            status, execution_id = "ok", execution_id_of(spec, result)
        span.set_attribute("reactor.trace.status", status)
        return SystemResult(
            name=spec.name,
            type=spec.type,
            endpoint=spec.endpoint,
            status=status,
            simulated=status == "simulated",
            reason=reason if status == "simulated" else None,
            execution_id=execution_id,
            response=result,
            upstream=list(upstream),
            health=health,
            attempts=attempts,
            trace_id=format(span.get_span_context().trace_id, "032x"),
            span_id=_hex_span_id(span),
            started_at=started_at,
            finished_at=_now_iso(),
            duration_ms=round((time.perf_counter() - start) * 1000, 3),
        )
