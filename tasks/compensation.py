"""Compensation on Prefect 3 transactions.

Side-effecting tasks run inside `with compensating("what") as undo:`; each registers an
`@task.on_rollback` hook that calls `record_compensation("…what it undid…")`. When the block
raises, Prefect runs the hooks in reverse order and `RolledBack` is raised listing every
compensation performed. Await every submitted future inside the block. Imports Prefect.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

from prefect.transactions import transaction

from tasks.errors import RolledBack

_current: ContextVar[list[str] | None] = ContextVar("reactor_compensations", default=None)


def record_compensation(action: str) -> None:
    """Called by an on_rollback hook once it has undone something."""
    done = _current.get()
    if done is not None:
        done.append(action)


@contextlib.contextmanager
def compensating(description: str) -> Iterator[list[str]]:
    """Run the block in a transaction; on error roll back and raise `RolledBack`."""
    done: list[str] = []
    token = _current.set(done)
    try:
        with transaction():
            yield done
    except Exception as exc:
        raise RolledBack(f"{description} failed: {exc}", done) from exc
    finally:
        _current.reset(token)
