"""Health monitor: checks every registered service, counts consecutive failures, restarts after
the threshold with backoff and a cap per hour, raises `reactor.worktree.alert.<kind>` events and
appends to `worktree_alerts.jsonl` (docs/worktree.md). Deploy it on a 30 s interval with
`once=True` (one round per run; prefect.yaml allows one active run), or run it as a loop with
`once=False`. Each service is checked and restarted under its own lock, so overlapping passes
never restart a service twice."""

from __future__ import annotations

import asyncio

from prefect import get_run_logger

from tasks.runtime import reactor_flow
from tasks.worktree.models import MonitorCheck, MonitorRequest, MonitorResult
from tasks.worktree.prefect_tasks import monitor_round
from tasks.worktree.publish import publish_health

ALERTING = ("alert", "restarted", "restart_failed", "capped")


# one task at a time; the runner's one API client serves every pass (docs/worktree.md)
@reactor_flow("worktree-health-monitor", concurrent=False)
async def health_monitor(request: MonitorRequest | None = None) -> MonitorResult:
    logger = get_run_logger()
    request = request or MonitorRequest()
    rounds = 1 if request.once else request.rounds
    checks: list[MonitorCheck] = []
    done = 0
    while rounds is None or done < rounds:
        if done:
            await asyncio.sleep(request.interval_s)
        checks = monitor_round(request, done + 1)
        done += 1
        logger.info(
            "round %d: %d service(s) checked, %d healthy, actions %s",
            done,
            len(checks),
            sum(c.healthy for c in checks),
            [f"{c.name}:{c.action}" for c in checks if c.action != "none"] or "none",
        )
    publish_health(checks, done)
    return MonitorResult(
        rounds=done,
        checks=checks,
        alerts=sum(c.action in ALERTING for c in checks),
        restarts=sum(c.action == "restarted" for c in checks),
    )


if __name__ == "__main__":
    print(asyncio.run(health_monitor(MonitorRequest(once=True))).model_dump_json(indent=2))
