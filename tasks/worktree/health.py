"""Health checks: healthy = a 2xx answer and, when the body is JSON with a `status`, a status of
`healthy` or `ok`. Latency is measured per check; `wait_healthy` polls until the deadline."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

from tasks.worktree.models import HealthCheck

HEALTHY_STATUSES = {"healthy", "ok"}


def health_url(port: int, path: str = "/health") -> str:
    return f"http://127.0.0.1:{port}{path}"


def check_health(
    url: str, timeout_s: float = 2.0, client: httpx.Client | None = None
) -> HealthCheck:
    """One GET of `url` judged by the rule above (never raises for network errors)."""
    own = client is None
    client = client or httpx.Client(trust_env=False)
    started = time.perf_counter()
    try:
        response = client.get(url, timeout=timeout_s)
    except httpx.HTTPError as exc:
        return HealthCheck(
            healthy=False,
            latency_ms=(time.perf_counter() - started) * 1000,
            detail=f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__,
        )
    finally:
        if own:
            client.close()
    latency_ms = (time.perf_counter() - started) * 1000
    body = None
    try:
        parsed = response.json()
        body = parsed if isinstance(parsed, dict) else None
    except ValueError:
        pass
    healthy = response.is_success
    detail = f"HTTP {response.status_code}"
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


def wait_healthy(
    url: str,
    timeout_s: float,
    interval_s: float = 1.0,
    still_running: Callable[[], bool] = lambda: True,
) -> tuple[HealthCheck, int]:
    """Poll `url` every `interval_s` until healthy, the process exits, or `timeout_s` passes.
    Returns the last check and how many checks were made."""
    deadline = time.monotonic() + timeout_s
    checks = 0
    with httpx.Client(trust_env=False) as client:
        while True:
            check = check_health(url, timeout_s=min(2.0, max(0.2, interval_s * 2)), client=client)
            checks += 1
            if check.healthy:
                return check, checks
            if not still_running():
                check.detail = f"process exited before becoming healthy ({check.detail})"
                return check, checks
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                check.detail = f"not healthy after {timeout_s:g} s ({check.detail})"
                return check, checks
            time.sleep(min(interval_s, remaining))
