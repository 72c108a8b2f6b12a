"""Compensation on Prefect 3 transactions.

Side-effecting tasks run inside `with compensating("what") as undone:`; each registers an
`@task.on_rollback` hook that calls `record_compensation("…what it undid…")`. When the block
raises, Prefect runs the hooks in reverse order and `RolledBack` is raised listing every
compensation performed. Await every submitted future inside the block. Imports Prefect.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

from prefect.exceptions import MissingContextError
from prefect.logging import get_logger, get_run_logger
from prefect.transactions import Transaction, TransactionState, get_transaction
from pydantic import PrivateAttr

from tasks.errors import RolledBack

_current: ContextVar[list[str] | None] = ContextVar("reactor_compensations", default=None)


class CompensatingTransaction(Transaction):
    """A transaction that also undoes tasks finishing after it was rolled back.

    Prefect 3.8 rolls the parent back as soon as one child task fails (`Transaction.reset`),
    while sibling tasks may still be running; a sibling that finishes later joins a parent that
    is already rolled back and its undo hook never runs (tests/flows/test_compensation.py shows
    the file it leaves behind). Here a child that joins late is rolled back as it joins. One lock
    orders the joins against the rollback, so no hook runs twice.
    """

    _guard: threading.RLock = PrivateAttr(default_factory=threading.RLock)

    def rollback(self) -> bool:
        with self._guard:
            return super().rollback()

    def add_child(self, transaction: Transaction) -> None:
        with self._guard:
            super().add_child(transaction)
            late = self.state == TransactionState.ROLLED_BACK
        if late:
            transaction.rollback()


def record_compensation(action: str) -> None:
    """Called by an on_rollback hook once it has undone something."""
    done = _current.get()
    if done is not None:
        done.append(action)


def compensated(action: str) -> None:
    """`record_compensation`, and a warning in the run's log saying what was undone."""
    record_compensation(action)
    try:
        logger = get_run_logger()
    except MissingContextError:
        logger = get_logger("transactions")
    logger.warning("compensation: %s", action)


def remember(**values: Any) -> None:
    """Keep what an undo hook will need on the current task's transaction."""
    if (txn := get_transaction()) is not None:
        for key, value in values.items():
            txn.set(key, value)


@contextlib.contextmanager
def compensating(description: str) -> Iterator[list[str]]:
    """Run the block in a transaction; on error roll back and raise `RolledBack`."""
    done: list[str] = []
    token = _current.set(done)
    try:
        logger = get_run_logger()
    except MissingContextError:
        logger = get_logger("transactions")
    try:
        with CompensatingTransaction(logger=logger):
            yield done
    except Exception as exc:
        raise RolledBack(f"{description} failed: {exc}", done) from exc
    finally:
        _current.reset(token)
