"""`module:function` handlers the queue tests register (`tests.unit.swarm.queue_handlers:<name>`).
They run in the handler pool's spawned worker processes, so what they must tell a test goes into
files under `payload["dir"]` (one O_APPEND write per line: lines of concurrent workers never
interleave)."""

from __future__ import annotations

import os
from pathlib import Path


def _note(call: dict, name: str) -> None:
    fd = os.open(Path(call["payload"]["dir"]) / name, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        os.write(fd, f"{call['task_id']}\n".encode())
    finally:
        os.close(fd)


def records(call: dict) -> dict:
    """Notes the item in `<dir>/executed`."""
    _note(call, "executed")
    return {"ok": True}


def fails_and_records(call: dict) -> dict:
    """Notes the attempt in `<dir>/attempts`, then fails."""
    _note(call, "attempts")
    raise ConnectionError(f"{call['task_id']}: the downstream system refused the batch")


def noop(call: dict) -> dict:
    return {}
