"""`tasks.periodic.every`, the loop behind the lease keeper and the agents' heartbeat: a beat
that raises is retried at the next interval; only a beat returning False ends the loop."""

from __future__ import annotations

import threading
import time

from tasks.periodic import every


def _wait_for(condition, timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_a_beat_that_raises_is_tried_again_at_the_next_interval():
    calls: list[int] = []

    def beat() -> None:
        calls.append(1)
        if len(calls) <= 2:
            raise OSError("store briefly unavailable")

    with every(0.02, beat, "flaky-beat"):
        assert _wait_for(lambda: len(calls) >= 4), f"beats stopped after {len(calls)}"


def test_a_beat_returning_false_ends_the_loop():
    calls: list[int] = []

    def beat() -> bool:
        calls.append(1)
        return False

    with every(0.02, beat, "lost-beat"):
        gone = _wait_for(lambda: not any(t.name == "lost-beat" for t in threading.enumerate()))
        assert gone and calls == [1]
