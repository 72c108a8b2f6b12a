"""Waiting for a service to become healthy, on the project's one health rule (`tasks.health`):
a 2xx answer and, when the body is JSON with a `status`, `healthy` or `ok`."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

from tasks.health import HealthCheck, probe
from tasks.net import tls_context


def health_url(port: int, path: str = "/health") -> str:
    return f"http://127.0.0.1:{port}{path}"


def check_health(url: str, timeout_s: float = 2.0) -> HealthCheck:
    """One probe of `url` (never raises for network errors)."""
    with httpx.Client(trust_env=False, verify=tls_context()) as client:
        return probe(client, url, timeout_s)


def wait_healthy(
    url: str,
    timeout_s: float,
    interval_s: float = 1.0,
    still_running: Callable[[], bool] = lambda: True,
    listens: Callable[[], bool | None] = lambda: None,
) -> tuple[HealthCheck, int]:
    """Poll `url` every `interval_s` until healthy, the process exits, or `timeout_s` passes.
    Healthy means an answer while the process still runs and, where `listens` can tell (None:
    it cannot), while the process or one it started listens on the port: another process
    holding the port answers too, until ours fails to bind and exits. Returns the last check
    and how many checks were made."""
    deadline = time.monotonic() + timeout_s
    checks = 0
    with httpx.Client(trust_env=False, verify=tls_context()) as client:
        while True:
            check = probe(client, url, timeout_s=min(2.0, max(0.2, interval_s * 2)))
            checks += 1
            running = still_running()
            if check.healthy and running and listens() is not False:
                return check, checks
            if check.healthy and running:  # keep waiting: ours may not have bound yet
                check.healthy = False
                check.detail = "the port answered, but the service's processes do not listen on it"
            elif check.healthy:  # an answer, but not from the service we started
                check.healthy = False
                check.detail = (
                    "the port answered, but the service had exited: another process holds it"
                )
                return check, checks
            if not running:
                check.detail = f"process exited before becoming healthy ({check.detail})"
                return check, checks
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                check.detail = f"not healthy after {timeout_s:g} s ({check.detail})"
                return check, checks
            time.sleep(min(interval_s, remaining))
