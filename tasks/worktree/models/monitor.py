"""The health monitor's request and what each pass found."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

__all__ = ["MonitorCheck", "MonitorRequest", "MonitorResult"]


class MonitorRequest(BaseModel):
    """One pass (`once`) or a loop every `interval_s` over every registered service."""

    once: bool = True
    interval_s: float = Field(default=30.0, gt=0)
    rounds: int | None = Field(default=None, ge=1)  # None with once=False: forever
    failure_threshold: int = Field(default=3, ge=1)
    max_restarts_per_hour: int = Field(default=5, ge=0)
    restart_backoff_s: float = Field(default=1.0, ge=0)
    restart_backoff_cap_s: float = Field(default=300.0, ge=0)
    health_timeout_s: float = Field(default=2.0, gt=0)
    restart_health_timeout_s: float = Field(default=30.0, gt=0)
    health_poll_interval_s: float = Field(default=0.5, gt=0)
    names: list[str] | None = None


class MonitorCheck(BaseModel):
    name: str
    healthy: bool
    process_alive: bool
    consecutive_failures: int
    # busy: another monitor pass holds the service's lock (it is checking or restarting it)
    action: Literal["none", "restarted", "restart_failed", "backoff", "capped", "alert", "busy"]
    detail: str = ""
    latency_ms: float | None = None
    pid: int | None = None


class MonitorResult(BaseModel):
    rounds: int
    checks: list[MonitorCheck]
    alerts: int
    restarts: int
