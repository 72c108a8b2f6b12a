"""Reading what a run left on the Prefect server (logs), for flow tests."""

from __future__ import annotations

import asyncio
import time
from uuid import UUID


async def _messages(flow_run_id: UUID) -> list[str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.client.schemas.sorting import LogSort

    async with get_client() as client:
        logs = await client.read_logs(
            log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])),
            sort=LogSort.TIMESTAMP_ASC,
        )
    return [log.message for log in logs]


def run_logs(flow_run_id: UUID | str, expect: str | None = None, timeout_s: float = 15) -> str:
    """The run's log messages (its tasks' included), one per line, in time order. The server
    persists logs asynchronously: with `expect`, poll until a message contains it."""
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=10)
    run_id = UUID(str(flow_run_id))
    deadline = time.monotonic() + timeout_s
    while True:
        text = "\n".join(asyncio.run(_messages(run_id)))
        if expect is None or expect in text or time.monotonic() > deadline:
            return text
        time.sleep(0.2)
