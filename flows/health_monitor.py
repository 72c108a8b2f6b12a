"""Health monitor (SPEC §5 step 6): checks every registered service, counts consecutive
failures, restarts after the threshold with backoff and a cap per hour, raises alert events and
appends to `worktree_alerts.jsonl`. Deploy it on a 30 s interval with `once=True` (one round per
run), or run it as a loop with `once=False`."""

from __future__ import annotations

import time

from prefect import flow

from tasks.artifacts import markdown_table, publish_markdown, publish_table
from tasks.telemetry import configure_telemetry
from tasks.worktree.models import MonitorRequest, MonitorResult
from tasks.worktree.prefect_tasks import monitor_round


@flow(name="worktree-health-monitor", validate_parameters=True)
def health_monitor(request: MonitorRequest | None = None) -> MonitorResult:
    configure_telemetry()
    request = request or MonitorRequest()
    rounds = 1 if request.once else request.rounds
    checks, done = [], 0
    while rounds is None or done < rounds:
        if done:
            time.sleep(request.interval_s)
        checks = monitor_round(request, done + 1)
        done += 1
    actions = [c for c in checks if c.action != "none"]
    rows = [c.model_dump(mode="json") for c in checks]
    publish_table("worktree-health", rows, "Last round of health checks")
    publish_markdown(
        "worktree-health-summary",
        f"# Worktree health\n\n{sum(c.healthy for c in checks)}/{len(checks)} healthy after "
        f"{done} round(s); {len(actions)} action(s).\n\n"
        + markdown_table(rows, ["name", "healthy", "consecutive_failures", "action", "detail"]),
        "Worktree health summary",
    )
    return MonitorResult(
        rounds=done,
        checks=checks,
        alerts=sum(c.action in ("alert", "restarted", "restart_failed", "capped") for c in checks),
        restarts=sum(c.action == "restarted" for c in checks),
    )


if __name__ == "__main__":
    print(health_monitor(MonitorRequest(once=True)).model_dump_json(indent=2))
