"""Real-time updates: Prefect events named `reactor.<scenario>.<what>`, plus an optional HTTP
broadcast sink (e.g. a Phoenix endpoint) configured by URL. Imports Prefect (edge module)."""

from __future__ import annotations

import logging
from typing import Any

import httpx
from prefect.events import emit_event
from pydantic import BaseModel

from tasks.redaction import redact
from tasks.settings import Settings, get_settings
from tasks.tracing import inject_headers

log = logging.getLogger(__name__)


class BroadcastResult(BaseModel):
    url: str
    delivered: bool
    status_code: int | None = None
    error: str | None = None


def emit(
    scenario: str,
    what: str,
    resource_id: str,
    payload: dict[str, Any] | None = None,
    settings: Settings | None = None,
) -> BroadcastResult | None:
    """Emit `reactor.<scenario>.<what>` about `resource_id` to Prefect's event feed and, when
    `broadcast_url` is configured, POST it there too (the broadcast result is returned)."""
    settings = settings or get_settings()
    event = f"reactor.{scenario}.{what}"
    clean = redact(payload or {})
    emit_event(
        event=event,
        resource={
            "prefect.resource.id": f"reactor.{scenario}.{resource_id}",
            "prefect.resource.name": resource_id,
        },
        payload=clean,
    )
    if settings.broadcast_url:
        body = {"event": event, "resource": resource_id, **clean}
        return broadcast(settings.broadcast_url, body, timeout_s=settings.http_timeout_s)
    return None


def broadcast(url: str, body: dict[str, Any], timeout_s: float = 5.0) -> BroadcastResult:
    """POST `body` with trace headers; a failed delivery is reported, never raised."""
    try:
        response = httpx.post(url, json=body, headers=dict(inject_headers()), timeout=timeout_s)
        return BroadcastResult(
            url=url, delivered=response.is_success, status_code=response.status_code
        )
    except httpx.HTTPError as exc:
        log.warning("broadcast to %s failed: %s", url, exc)
        return BroadcastResult(url=url, delivered=False, error=f"{type(exc).__name__}: {exc}")
