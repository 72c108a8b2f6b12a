"""The one health rule and the one `HealthCheck` model (trace systems and worktree services).

Healthy = a 2xx answer and, when the body is a JSON object with a `status`, a status of
`healthy` or `ok`. Where the endpoint is known to answer JSON (`expects_json`, e.g. n8n's
`/healthz`), an HTML or other non-JSON 2xx page is *not* a health answer: n8n serves its 52 KB
editor page with 200 on every unknown path, so counting a page would make every n8n look
healthy.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
from pydantic import BaseModel

HEALTHY_STATUSES = frozenset({"healthy", "ok"})


class HealthCheck(BaseModel):
    """One health probe: its verdict, what answered and how fast."""

    healthy: bool
    status_code: int | None = None
    latency_ms: float
    detail: str = ""
    body: dict[str, Any] | None = None


def judge(response: httpx.Response, latency_ms: float, expects_json: bool = False) -> HealthCheck:
    """Apply the health rule to one answer."""
    body: dict[str, Any] | None = None
    is_json = False
    try:
        parsed = response.json()
        is_json = True
        body = parsed if isinstance(parsed, dict) else None
    except ValueError:
        pass
    healthy = response.is_success
    detail = f"HTTP {response.status_code}"
    if healthy and expects_json and not is_json:
        kind = response.headers.get("content-type", "no content type").split(";")[0]
        healthy, detail = False, f"{detail} answered {kind}, not a JSON health document"
    if body is not None and "status" in body:
        healthy = healthy and str(body["status"]).lower() in HEALTHY_STATUSES
        detail += f" status={body['status']!r}"
    return HealthCheck(
        healthy=healthy,
        status_code=response.status_code,
        latency_ms=latency_ms,
        detail=detail,
        body=body,
    )


def unreachable(exc: Exception, latency_ms: float) -> HealthCheck:
    """The verdict when no answer came (connection refused, timeout, …)."""
    detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return HealthCheck(healthy=False, latency_ms=latency_ms, detail=detail)


def probe(
    client: httpx.Client,
    url: str,
    timeout_s: float,
    headers: dict[str, str] | None = None,
    expects_json: bool = False,
) -> HealthCheck:
    """GET `url` once and judge it; never raises for network errors."""
    started = time.perf_counter()
    try:
        response = client.get(url, headers=headers, timeout=timeout_s)
    except httpx.HTTPError as exc:
        return unreachable(exc, (time.perf_counter() - started) * 1000)
    return judge(response, (time.perf_counter() - started) * 1000, expects_json)
