"""Waiting on a condition with a bound, for tests: never a fixed sleep for something observable."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    what: str, check: Callable[[], T], timeout_s: float = 60, every_s: float = 0.02
) -> T:
    """Poll `check()` until it returns something truthy (returned); fail naming `what` after
    `timeout_s` seconds."""
    deadline = time.monotonic() + timeout_s
    while not (got := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(every_s)
    return got


def passed(iso: str | None, plus_s: float = 0.0) -> bool:
    """Whether the ISO timestamp `iso` (+ `plus_s` seconds) lies in the past."""
    if not iso:
        return True
    return datetime.fromisoformat(iso).timestamp() + plus_s < datetime.now(UTC).timestamp()
