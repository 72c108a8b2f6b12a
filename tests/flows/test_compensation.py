"""Compensation on Prefect transactions: a failing third step undoes the first two, in
reverse order, and the error lists what was undone."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from prefect import flow, task
from prefect.futures import wait
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.transactions import get_transaction

from tasks.compensation import compensating, record_compensation
from tasks.errors import RolledBack

UNDO_ORDER: list[str] = []


@task(task_run_name="write-{name}")
def write_file(directory: Path, name: str) -> Path:
    path = directory / name
    path.write_text(name)
    get_transaction().set("path", str(path))
    return path


@write_file.on_rollback
def _remove_file(txn) -> None:
    path = Path(txn.get("path"))
    path.unlink()
    UNDO_ORDER.append(path.name)
    record_compensation(f"removed {path.name}")


@task
def fail_third(directory: Path) -> None:
    raise RuntimeError(f"third step failed in {directory.name}")


@flow
async def three_steps(directory: Path, fail: bool) -> list[str]:
    with compensating("three steps") as undone:
        write_file(directory, "first.txt")
        write_file(directory, "second.txt")
        if fail:
            fail_third(directory)
    return undone


def test_third_task_failure_undoes_first_two_in_reverse_order(tmp_path):
    UNDO_ORDER.clear()
    with pytest.raises(RolledBack) as info:
        asyncio.run(three_steps(tmp_path, fail=True))
    assert UNDO_ORDER == ["second.txt", "first.txt"]
    assert info.value.compensations == ["removed second.txt", "removed first.txt"]
    assert "third step failed" in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_success_keeps_side_effects_and_undoes_nothing(tmp_path):
    UNDO_ORDER.clear()
    assert asyncio.run(three_steps(tmp_path, fail=False)) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["first.txt", "second.txt"]
    assert UNDO_ORDER == []


@task(task_run_name="slow-write-{name}")
def slow_write(directory: Path, name: str, delay_s: float) -> Path:
    time.sleep(delay_s)  # still running when its sibling fails
    return write_file.fn(directory, name)


@slow_write.on_rollback
def _remove_slow_file(txn) -> None:
    _remove_file(txn)


@task
def fail_fast(directory: Path) -> None:
    raise RuntimeError(f"sibling failed in {directory.name}")


@flow(task_runner=ThreadPoolTaskRunner(max_workers=4))
async def concurrent_steps(directory: Path) -> list[str]:
    with compensating("concurrent steps") as undone:
        slow = slow_write.submit(directory, "slow.txt", 1.0)
        failing = fail_fast.submit(directory)
        wait([slow, failing])
        failing.result()
    return undone


def test_a_sibling_finishing_after_the_failure_is_undone_too(tmp_path):
    """Prefect rolls the parent back the moment one task fails; a task still running then
    must be undone when it finishes, not left behind."""
    UNDO_ORDER.clear()
    with pytest.raises(RolledBack) as info:
        asyncio.run(concurrent_steps(tmp_path))
    assert list(tmp_path.iterdir()) == []
    assert info.value.compensations == ["removed slow.txt"]
