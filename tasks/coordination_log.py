"""`coordination_log.json`: the append-only record every scenario writes its outcomes to.

A JSON array in the coordination dir, mutated only through the locked store. Swarm completions
use the original fields (work_item_id, completed_at, agent_id, result, velocity_points); other
scenarios add an entry with `scenario`, `run_id` and their own fields.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from tasks.settings import Settings, get_settings
from tasks.store import JsonStore

LOG_FILE = "coordination_log.json"


def log_store(settings: Settings | None = None) -> JsonStore[list[dict[str, Any]]]:
    settings = settings or get_settings()
    return JsonStore(
        settings.coordination_dir / LOG_FILE,
        list,
        lock_timeout_s=settings.lock_timeout_s,
        lock_tries=settings.lock_tries,
    )


def append_entries(entries: Iterable[dict[str, Any]], settings: Settings | None = None) -> int:
    """Append `entries` (a `logged_at` timestamp is added when missing); returns the log size."""
    now = datetime.now(UTC).isoformat()
    new = [{"logged_at": now, **e} for e in entries]
    return len(log_store(settings).update(lambda log: log.extend(new)))


def read_log(settings: Settings | None = None) -> list[dict[str, Any]]:
    return log_store(settings).read()
