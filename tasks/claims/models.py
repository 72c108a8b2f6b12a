"""What crosses the ledger's boundary: the items producers add and the claims holders get back.

Both backends return the same `Claim` (the classic `work_claims.json` field names plus lease,
fencing and queue bookkeeping), so a caller never knows which backend answered.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, field_validator

from tasks.errors import InvalidInput
from tasks.ids import new_id
from tasks.redaction import dumps_redacted, redact_values

DB_FILE = "claims.sqlite3"
CLAIMS_FILE = "work_claims.json"
DEFAULT_LEASE_S = 300.0
DEFAULT_MAX_ATTEMPTS = 3
# A week: longer than any handler a drain runs, short enough that a lost holder's item returns.
MAX_LEASE_S = 7 * 24 * 3600.0
MAX_ESTIMATED_DURATION_MS = 30 * 24 * 3600 * 1000  # 30 days, far inside a 64-bit column
# A lease no holder renewed in time: the prefix of the `last_error` it leaves (both backends).
LEASE_LAPSED = "lease expired"
LeaseSeconds = Annotated[float, Field(gt=0, le=MAX_LEASE_S, allow_inf_nan=False)]
Priority = Literal["critical", "high", "medium", "low"]
PRIORITY_RANK: dict[str, int] = {"critical": 0, "high": 1, "medium": 2, "low": 3}
Status = Literal["pending", "claimed", "in_progress", "completed", "failed"]
HELD = ("claimed", "in_progress")
FINISHED = ("completed", "failed")
# The classic work_claims.json record, in its order; `Claim.seed_record()` puts these first.
SEED_FIELDS = (
    "work_item_id", "agent_id", "claimed_at", "estimated_duration", "work_type", "priority",
    "description", "status", "team", "telemetry",
)  # fmt: skip


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


def stored_result(value: Any) -> str:
    """A holder's result as both backends keep it: JSON with no known secret in it (a result
    or error reaches the ledger, `work_claims.json` and the datasets; tasks/redaction.py).
    NaN and Infinity are not JSON (PostgreSQL refuses them, SQLite would keep invalid JSON):
    both backends refuse such a result with one `InvalidInput` before touching the store."""
    try:
        return dumps_redacted(value, default=str, allow_nan=False)
    except ValueError:
        raise InvalidInput(
            f"result holds a non-finite number at {non_finite_path(value) or 'its top level'}; "
            "a result must be JSON (NaN and Infinity are not): make it null or a string"
        ) from None


def non_finite_path(value: Any, path: str = "result") -> str | None:
    """Where the first NaN/Infinity in a JSON-like value is (`result.stats.mean`), else None."""
    if isinstance(value, float) and not math.isfinite(value):
        return path
    if isinstance(value, dict):
        items: Any = ((f"{path}.{k}", v) for k, v in value.items())
    elif isinstance(value, list | tuple):
        items = ((f"{path}[{i}]", v) for i, v in enumerate(value))
    else:
        return None
    for where, inner in items:
        if (found := non_finite_path(inner, where)) is not None:
            return found
    return None


def checked_lease(lease_s: Any) -> float:
    """A lease both backends can store and expire: a finite number of seconds in
    (0, MAX_LEASE_S]. NaN would be stored as no expiry (held for ever), Infinity overflows."""
    try:
        value = float(lease_s)
    except (TypeError, ValueError):
        value = math.nan
    if not 0 < value <= MAX_LEASE_S:  # NaN fails every comparison
        raise InvalidInput(
            f"lease_s must be a finite number of seconds, > 0 and <= {MAX_LEASE_S:.0f} "
            f"(a week), got {lease_s!r}"
        )
    return value


def checked_limit(limit: int | None) -> int | None:
    """A listing limit: None (everything) or a positive count."""
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise InvalidInput(f"limit must be a positive whole number, got {limit!r}")
    return limit


def stored_error(error: str) -> str:
    """A failed attempt's error as both backends keep it: no known secret in it."""
    return redact_values(error)


class WorkItem(BaseModel):
    """An item to add to the ledger; `work_item_id` defaults to a fresh `work_<ns>` id.

    `dependencies` name other work items (in the same `add` batch or already in the ledger);
    an item is claimable only once every one of them is completed. `max_attempts` bounds how
    often `fail` returns it to the queue before it is failed for good.
    """

    work_item_id: str = Field(default_factory=lambda: new_id("work"), min_length=1)
    work_type: str = Field(default="analysis", min_length=1)
    priority: Priority = "medium"
    description: str = ""
    estimated_duration: int = Field(
        default=0, ge=0, le=MAX_ESTIMATED_DURATION_MS, description="milliseconds (<= 30 days)"
    )
    team: str = "swarm"
    payload: dict[str, Any] = Field(default_factory=dict)
    dependencies: list[str] = Field(default_factory=list)
    max_attempts: int = Field(default=DEFAULT_MAX_ATTEMPTS, ge=1, le=1000)

    @field_validator("payload")
    @classmethod
    def _json_object(cls, value: dict[str, Any]) -> dict[str, Any]:
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"payload must be a JSON object ({exc})") from None
        return value

    @field_validator("dependencies")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))


class Claim(BaseModel):
    """One row of the ledger, in the classic field names (plus lease and queue bookkeeping).

    `claim_id` is the fencing token: every holder operation names it, and it changes on every
    (re-)claim, so an execution that lost its lease cannot touch the item again.
    """

    work_item_id: str
    agent_id: str | None
    claim_id: str | None
    claimed_at: str | None
    estimated_duration: int
    work_type: str
    priority: str
    description: str
    status: Status
    team: str
    telemetry: dict[str, str | None]
    lease_expires_at: str | None = None
    last_heartbeat: str | None = None
    progress: int = 0
    claims: int = 0  # how many times the item was claimed (>1 after a lease was reclaimed)
    attempts: int = 0  # failed attempts: `fail` calls and leases that lapsed
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    last_error: str | None = None
    dependencies: list[str] = Field(default_factory=list)
    created_at: str | None = None
    completed_at: str | None = None
    result: Any = None
    payload: dict[str, Any] = Field(default_factory=dict)

    def seed_record(self) -> dict[str, Any]:
        """The `work_claims.json` record (seed field names first)."""
        data = self.model_dump(exclude={"payload"})
        return {**{k: data.pop(k) for k in SEED_FIELDS}, **data}


def current_telemetry() -> tuple[str | None, str | None]:
    """The trace/span id of the caller's current OpenTelemetry span, if any."""
    from opentelemetry import trace

    from tasks.tracing import format_span_id, format_trace_id

    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None, None
    return format_trace_id(ctx.trace_id), format_span_id(ctx.span_id)


def _iso(value: Any) -> str | None:
    """An ISO-8601 UTC string from an epoch float (SQLite), a datetime (PostgreSQL) or a str."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return datetime.fromtimestamp(value, UTC).isoformat()


def claim_from_row(row: Any, decode_json: bool = True) -> Claim:
    """A `Claim` from one row of either backend (a mapping with the ledger's column names).
    SQLite stores JSON as text (`decode_json`); psycopg hands JSONB back already decoded.
    Rows were validated on the way in, so they are not validated again (`model_construct`:
    a batch claim builds 10-100 of these per call)."""

    def _json(value: Any, default: Any) -> Any:
        if value is None:
            return default
        return json.loads(value) if decode_json else value

    return Claim.model_construct(
        work_item_id=row["work_item_id"],
        agent_id=row["agent_id"],
        claim_id=row["claim_id"],
        claimed_at=_iso(row["claimed_at"]),
        estimated_duration=row["estimated_duration"],
        work_type=row["work_type"],
        priority=row["priority"],
        description=row["description"],
        status=row["status"],
        team=row["team"],
        telemetry={"trace_id": row["trace_id"], "span_id": row["span_id"]},
        lease_expires_at=_iso(row["lease_expires"]),
        last_heartbeat=_iso(row["last_heartbeat"]),
        progress=row["progress"],
        claims=row["claims"],
        attempts=row["attempts"],
        max_attempts=row["max_attempts"],
        last_error=row["last_error"],
        dependencies=_json(row["dependencies"], []),
        created_at=_iso(row["created_at"]),
        completed_at=_iso(row["completed_at"]),
        result=_json(row["result"], None),
        payload=_json(row["payload"], {}),
    )
