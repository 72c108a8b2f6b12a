"""The models that cross the trace scenario's boundaries: the request (validated before any
call is made), the trace each step gets a copy of, per-system results, the analysis and the
run result."""

from __future__ import annotations

import ipaddress
import re
import time
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tasks.fields import PositiveNumber
from tasks.graph import validate_graph
from tasks.health import HealthCheck
from tasks.redaction import without_credentials
from tasks.tracing import is_baggage_key

SystemType = Literal["phoenix", "n8n", "xavos", "generic"]
SYSTEM_TYPES: tuple[str, ...] = ("phoenix", "n8n", "xavos", "generic")

# The endpoint each kind of system exposes for a reactor step, all POST.
DEFAULT_PATHS: dict[str, str] = {
    "phoenix": "/api/reactor/execute",
    "n8n": "/webhook/reactor-integration",
    "xavos": "/api/coordination/execute",
    "generic": "/api/execute",
}
# Where each kind answers health checks. n8n's health endpoint is /healthz ({"status":"ok"});
# its /health is the 52 KB editor page, answered with 200 whatever the state.
DEFAULT_HEALTH_PATHS: dict[str, str] = {
    "phoenix": "/health",
    "n8n": "/healthz",
    "xavos": "/health",
    "generic": "/health",
}
# Kinds whose health endpoint answers JSON: an HTML (or other non-JSON) page is no health answer.
JSON_HEALTH_TYPES: frozenset[str] = frozenset({"n8n"})
# Where a system's answer may carry the id of the execution it ran, most specific first. These
# are conventions, not a contract: a real n8n webhook answers its last node's output, so an id
# is there only when the workflow puts one in (see samples/n8n/); without one it is recorded as
# UNKNOWN_EXECUTION, and the call still succeeded.
EXECUTION_ID_FIELDS: dict[str, tuple[str, ...]] = {
    "phoenix": ("execution_id", "executionId"),
    "n8n": ("executionId", "execution_id"),
    "xavos": ("coordination_id", "execution_id", "executionId"),
    "generic": ("execution_id", "executionId"),
}
UNKNOWN_EXECUTION = "unknown"
WORKFLOW_TYPE = "multi-system-trace"
SYSTEM_ORIGIN = "reactor-flows"

_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")


_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\.?")


def url_problem(url: str) -> str | None:
    """Why `url` is not a usable http(s) base URL, or None."""
    if not url or any(c.isspace() for c in url):
        return "expected http(s)://host[:port][/prefix] without spaces"
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        return str(exc)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return "expected http(s)://host[:port][/prefix]"
    try:
        parts.port  # noqa: B018 (raises on a bad port)
    except ValueError as exc:
        return f"bad port ({exc})"
    host = parts.hostname or ""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if not _HOSTNAME.fullmatch(host):
            return f"host {host!r} is not a hostname or IP address"
    if parts.username or parts.password:
        return "credentials do not belong in a URL (they would reach spans and logs)"
    if parts.query or parts.fragment:
        return "a base URL carries no query or fragment"
    return None


class SystemSpec(BaseModel):
    """One external system the workflow calls."""

    model_config = ConfigDict(extra="forbid")

    name: str
    type: SystemType = "generic"
    url: str = Field(description="base URL, e.g. http://127.0.0.1:4000")
    path: str | None = Field(default=None, description="POST path; defaults by type")
    health_path: str | None = Field(
        default=None,
        description="GET path; defaults by type (n8n /healthz, others /health); null skips it",
    )
    timeout_s: PositiveNumber = 5.0
    retries: int = Field(default=2, ge=0, le=10)
    payload: dict[str, Any] = Field(default_factory=dict)
    depends_on: list[str] = Field(default_factory=list)

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        if not _NAME.fullmatch(name):
            raise ValueError(f"system name {name!r} must be 1-64 characters of [A-Za-z0-9._-]")
        return name

    @field_validator("url")
    @classmethod
    def _url(cls, url: str) -> str:
        problem = url_problem(url)
        if problem:  # echoed without its userinfo: it may carry credentials
            raise ValueError(f"url {without_credentials(url)!r} is malformed: {problem}")
        return url.rstrip("/")

    @field_validator("path", "health_path")
    @classmethod
    def _path(cls, path: str | None) -> str | None:
        if path is not None and (not path.startswith("/") or " " in path or "?" in path):
            raise ValueError(f"path {path!r} must start with '/' and carry no spaces or query")
        return path

    @model_validator(mode="after")
    def _default_paths(self) -> SystemSpec:
        if self.path is None:
            self.path = DEFAULT_PATHS[self.type]
        if "health_path" not in self.model_fields_set:  # an explicit null skips the check
            self.health_path = DEFAULT_HEALTH_PATHS[self.type]
        return self

    @property
    def endpoint(self) -> str:
        return f"{self.url}{self.path}"

    @property
    def health_url(self) -> str | None:
        return None if self.health_path is None else f"{self.url}{self.health_path}"

    @property
    def health_expects_json(self) -> bool:
        return self.type in JSON_HEALTH_TYPES


class TraceRequest(BaseModel):
    """The multi-system trace workflow to run."""

    model_config = ConfigDict(extra="forbid")

    workflow_id: str = Field(min_length=1, max_length=200)
    systems: list[SystemSpec] = Field(min_length=1)
    enable_fallback: bool = True
    timeout_multiplier: PositiveNumber = 1.0
    baggage: dict[str, str] = Field(default_factory=dict, description="extra W3C baggage")
    max_simulated_share: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="the run fails when more than this share of its systems was simulated "
        "(fallback); it always fails when all of them were",
    )

    @field_validator("baggage")
    @classmethod
    def _baggage(cls, entries: dict[str, str]) -> dict[str, str]:
        bad = [k for k in entries if not is_baggage_key(k)]
        if bad:
            raise ValueError(
                f"baggage keys {bad} are not W3C baggage keys (RFC 7230 tokens: letters, "
                "digits and !#$%&'*+-.^_`|~)"
            )
        if len(entries) > 150:
            raise ValueError(f"{len(entries)} baggage entries; at most 150 fit beside ours")
        return entries

    @model_validator(mode="after")
    def _graph(self) -> TraceRequest:
        seen: set[str] = set()
        duplicates = sorted({s.name for s in self.systems if s.name in seen or seen.add(s.name)})
        if duplicates:
            raise ValueError(f"duplicate system names {duplicates}; each name must be unique")
        validate_graph(self.graph, "system")
        return self

    @property
    def graph(self) -> dict[str, list[str]]:
        return {s.name: list(s.depends_on) for s in self.systems}

    def system(self, name: str) -> SystemSpec:
        return next(s for s in self.systems if s.name == name)


class CallContext(BaseModel):
    """What every system step receives: its own copy of the trace context (a serialized
    W3C carrier), the correlation id and the run's policies."""

    workflow_id: str
    correlation_id: str
    carrier: dict[str, str]
    timeout_multiplier: PositiveNumber = 1.0
    enable_fallback: bool = True


class TraceIdentity(BaseModel):
    """The ids a run keeps across its attempts: its trace id (every attempt's root span is a
    child of the remote `anchor_span_id` in it) and its correlation id."""

    trace_id: str
    anchor_span_id: str
    correlation_id: str


class TraceStart(BaseModel):
    """The workflow's trace: ids, baggage and the serialized W3C carrier."""

    workflow_id: str
    trace_id: str
    root_span_id: str
    correlation_id: str
    baggage: dict[str, str]
    carrier: dict[str, str]
    started: float  # perf_counter at the root span's start

    def call_context(self, request: TraceRequest) -> CallContext:
        """A fresh copy of the trace context for one step."""
        return CallContext(
            workflow_id=self.workflow_id,
            correlation_id=self.correlation_id,
            carrier=dict(self.carrier),
            timeout_multiplier=request.timeout_multiplier,
            enable_fallback=request.enable_fallback,
        )

    def elapsed_ms(self) -> float:
        return round((time.perf_counter() - self.started) * 1000, 3)


class Attempt(BaseModel):
    """One outgoing call to a system (its own CLIENT span and parent-id)."""

    attempt: int
    span_id: str
    traceparent: str
    status: Literal["ok", "error", "timeout"]
    http_status: int | None = None
    duration_ms: float
    error: str | None = None


class SystemResult(BaseModel):
    """What one system step produced; `status` is `simulated` when the fallback answered.
    `response` is the system's answer as it came (a JSON object or array, or text);
    `execution_id` is UNKNOWN_EXECUTION when the answer carried none."""

    name: str
    type: SystemType
    endpoint: str
    status: Literal["ok", "simulated"]
    simulated: bool = False
    reason: str | None = None
    execution_id: str
    response: Any
    upstream: list[str] = Field(default_factory=list)
    health: HealthCheck | None = None
    attempts: list[Attempt] = Field(default_factory=list)
    trace_id: str
    span_id: str
    started_at: str
    finished_at: str
    duration_ms: float


class SystemLatency(BaseModel):
    name: str
    status: str
    attempts: int
    p50_ms: float | None
    p95_ms: float | None
    max_ms: float | None
    step_ms: float


class HopLatency(BaseModel):
    """The hop into `system`: the call latency and the hand-off gap after its upstreams."""

    source: str  # an upstream system, or "orchestrator" for a system with no dependencies
    system: str
    handoff_ms: float
    call_ms: float | None
    server_ms: float | None = None  # the stand-in's own SERVER span, when it reported one


class TraceAnalysis(BaseModel):
    trace_id: str
    span_count: int
    systems: list[SystemLatency]
    hops: list[HopLatency]
    critical_path: list[str]
    critical_path_ms: float
    slowest: str | None
    bottlenecks: list[str]
    recommendations: list[str]


class PathEntry(BaseModel):
    system: str
    status: Literal["ok", "simulated"]
    execution_id: str
    reason: str | None = None
    duration_ms: float


class TraceRunResult(BaseModel):
    workflow_id: str
    run_id: str
    trace_id: str
    correlation_id: str
    baggage: dict[str, str]
    path: list[PathEntry]
    results: dict[str, SystemResult]
    analysis: TraceAnalysis
    orchestration_ms: float
    exports: list[str]
    broadcast_delivered: bool | None = None
