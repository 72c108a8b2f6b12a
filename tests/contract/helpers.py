"""Helpers of the ledger contract tests (tests/contract/test_ledger.py)."""

from __future__ import annotations

from tasks.claims import WorkItem


def _items(n: int, prefix: str = "w", **fields) -> list[WorkItem]:
    return [WorkItem(work_item_id=f"{prefix}{i:05d}", **fields) for i in range(n)]


def _where(settings) -> tuple[str, str | None]:
    return str(settings.coordination_dir), settings.database_dsn


def _join(procs, timeout: float = 120) -> None:
    for p in procs:
        p.join(timeout)
        assert p.exitcode == 0, f"{p.name} exited with {p.exitcode}"
