"""The one retry policy.

- Network and LLM tasks: Prefect task retries with exponential backoff and jitter
  (`NETWORK_RETRIES`, spread into `@task(**NETWORK_RETRIES)`).
- Lock contention inside a task: `with_backoff`, delays `min(0.1 * 2**n, 5)` s with jitter,
  5 tries by default.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")

NETWORK_RETRIES: dict[str, Any] = {
    "retries": 3,
    # Same numbers as prefect.tasks.exponential_backoff(backoff_factor=1), computed here so this
    # module stays Prefect-free: 1 s, 2 s, 4 s, each jittered by up to ±50 %.
    "retry_delay_seconds": [1.0, 2.0, 4.0],
    "retry_jitter_factor": 0.5,
}


def backoff_delays(
    tries: int = 5, base: float = 0.1, cap: float = 5.0, jitter: float = 0.5
) -> Iterator[float]:
    """Delays between `tries` attempts: `min(base * 2**n, cap)`, each scaled by 1 ± jitter."""
    for n in range(tries - 1):
        delay = min(base * 2**n, cap)
        yield delay * (1 + random.uniform(-jitter, jitter))


def with_backoff(
    fn: Callable[[], T],
    retry_on: tuple[type[BaseException], ...],
    tries: int = 5,
    base: float = 0.1,
    cap: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call `fn` until it succeeds or `tries` attempts raised `retry_on`; re-raise the last."""
    delays = backoff_delays(tries, base, cap)
    while True:
        try:
            return fn()
        except retry_on:
            delay = next(delays, None)
            if delay is None:
                raise
            sleep(delay)
