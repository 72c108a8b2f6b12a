"""`work_claims.json`: the classic view of the ledger, for people and old tools.

The ledger (SQLite or PostgreSQL) is the source of truth; this file is rewritten from it. A
file that does not parse is not silently replaced: it is renamed aside with a timestamp
(`work_claims.json.corrupt-<UTC time>`) and the `Snapshot` says where it went.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tasks.claims.models import CLAIMS_FILE
from tasks.errors import CorruptStore, InvalidInput
from tasks.redaction import dumps_redacted
from tasks.store import JsonStore, atomic_write_bytes


@dataclass(frozen=True)
class Snapshot:
    path: Path
    records: int
    moved_aside: Path | None = None  # the unreadable file that was there before, kept


def ensure_dir(coordination_dir: Path) -> Path:
    """The coordination dir, made if missing; one `InvalidInput` when a file is in the way."""
    try:
        coordination_dir.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise InvalidInput(
            f"coordination dir {coordination_dir} is not a directory (a file is in the way); "
            "point REACTOR_COORDINATION_DIR (or --coordination-dir) at a directory"
        ) from None
    return coordination_dir


def write_snapshot(coordination_dir: Path, records: list[dict[str, Any]]) -> Snapshot:
    """Replace `work_claims.json` with `records` under its lock, keeping an unreadable one."""
    path = ensure_dir(Path(coordination_dir)) / CLAIMS_FILE
    store = JsonStore(path, list)
    with store.locked():
        moved = None
        try:
            store.read()
        except CorruptStore:
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
            moved = path.with_name(f"{path.name}.corrupt-{stamp}")
            os.replace(path, moved)
        data = dumps_redacted(records, indent=2, default=str, ensure_ascii=False).encode()
        atomic_write_bytes(path, data + b"\n")
    return Snapshot(path, len(records), moved)
