from __future__ import annotations

import pytest

from tasks.retry import backoff_delays, with_backoff


def test_delays_double_and_cap_at_5_seconds_with_jitter():
    delays = list(backoff_delays(tries=10, jitter=0.5))
    assert len(delays) == 9
    for n, d in enumerate(delays):
        nominal = min(0.1 * 2**n, 5.0)
        assert 0.5 * nominal <= d <= 1.5 * nominal


def test_with_backoff_retries_then_succeeds():
    calls, slept = [], []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise TimeoutError("busy")
        return "ok"

    assert with_backoff(flaky, retry_on=(TimeoutError,), sleep=slept.append) == "ok"
    assert len(calls) == 3 and len(slept) == 2


def test_with_backoff_gives_up_after_tries_and_reraises():
    slept = []
    with pytest.raises(TimeoutError):
        with_backoff(
            lambda: (_ for _ in ()).throw(TimeoutError("x")), (TimeoutError,), 5, sleep=slept.append
        )
    assert len(slept) == 4


def test_other_errors_are_not_retried():
    slept = []
    with pytest.raises(KeyError):
        with_backoff(lambda: {}["x"], retry_on=(TimeoutError,), sleep=slept.append)
    assert slept == []
