"""The monitor's restart policy: threshold, backoff, cap per hour."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tasks.worktree.models import MonitorRequest
from tasks.worktree.monitor import backoff_s, decide

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)


def test_restart_only_after_three_consecutive_failures():
    req = MonitorRequest()
    d1 = decide(0, [], False, NOW, req)
    d2 = decide(d1.consecutive_failures, [], False, NOW, req)
    d3 = decide(d2.consecutive_failures, [], False, NOW, req)
    assert [d1.action, d2.action, d3.action] == ["none", "none", "restart"]
    assert decide(2, [], True, NOW, req).consecutive_failures == 0


def test_backoff_grows_and_is_capped():
    assert [backoff_s(n, 1.0, 10.0) for n in range(6)] == [0.0, 2.0, 4.0, 8.0, 10.0, 10.0]


def test_restart_waits_out_its_backoff_window():
    req = MonitorRequest(restart_backoff_s=60)
    restarts = [NOW - timedelta(seconds=30)]
    assert decide(5, restarts, False, NOW, req).action == "backoff"
    assert decide(5, restarts, False, NOW + timedelta(seconds=200), req).action == "restart"


def test_restarts_per_hour_are_capped_and_old_ones_expire():
    req = MonitorRequest(max_restarts_per_hour=2, restart_backoff_s=0)
    recent = [NOW - timedelta(minutes=m) for m in (50, 10)]
    assert decide(3, recent, False, NOW, req).action == "capped"
    later = NOW + timedelta(minutes=15)  # the 50-minute-old restart has left the hour
    assert decide(3, recent, False, later, req).action == "restart"
