"""Size-based rotation shared by the span log (`tasks/span_log.py`) and services' logs
(`tasks/worktree/log_relay.py`): `<path>` → `<path>.1` … `<path>.<backups>`, the oldest dropped,
under a file lock so that processes sharing a file rotate it once. Python's
`RotatingFileHandler` keeps its stream open, so a second process would go on writing into the
renamed file and rotate it again. Light on imports: every log relay process loads it."""

from __future__ import annotations

import os
from pathlib import Path


def rotated(path: Path, n: int) -> Path:
    """The n-th older generation of a rotated log (`api.log.1`, …)."""
    return path.with_name(f"{path.name}.{n}")


def size_of(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def rotate(path: Path, incoming: int, max_bytes: int, backups: int) -> None:
    """Rotate `path` if writing `incoming` more bytes would take it past `max_bytes` (checked
    again under the lock: another process may have rotated it meanwhile)."""
    from filelock import FileLock  # here: importing it costs every relay start ~50 ms

    with FileLock(f"{path}.lock"):
        size = size_of(path)
        if size == 0 or size + incoming <= max_bytes:
            return
        for n in range(max(backups, 1) - 1, 0, -1):
            if (older := rotated(path, n)).exists():
                os.replace(older, rotated(path, n + 1))
        os.replace(path, rotated(path, 1))
