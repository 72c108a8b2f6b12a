"""The flows' task runner gives every task run of a flow one shared sync API client, as a sync
flow's task runs get from Prefect; without it each task run of an `async def` flow opens two
clients, each parsing a CA bundle into a TLS context (tasks/runtime.py)."""

from __future__ import annotations

import asyncio

from prefect import flow, task
from prefect.context import SyncClientContext

from tasks.runtime import task_runner


@task
def client_of_this_task_run(_: int) -> int:
    return id(SyncClientContext.get().client)


@flow(task_runner=task_runner())
async def several_task_runs() -> list[int]:
    return [f.result() for f in client_of_this_task_run.map(range(6))]


@flow(task_runner=task_runner())
async def outer() -> tuple[list[int], list[int]]:
    mine = [f.result() for f in client_of_this_task_run.map(range(3))]
    return mine, await several_task_runs()


def test_every_task_run_of_an_async_flow_uses_one_client():
    clients = asyncio.run(several_task_runs())
    assert len(clients) == 6 and len(set(clients)) == 1


def test_a_subflows_task_runs_share_one_client_too():
    mine, sub = asyncio.run(outer())
    assert len(set(mine)) == 1 and len(sub) == 6 and len(set(sub)) == 1


@flow(task_runner=task_runner())
async def direct_and_submitted() -> tuple[int, int, int]:
    submitted = client_of_this_task_run.submit(0).result()
    called = client_of_this_task_run(1)  # a sync task called in the flow body
    return submitted, called, id(SyncClientContext.get().client)


def test_the_flow_body_and_tasks_it_calls_directly_use_the_same_client():
    submitted, called, body = asyncio.run(direct_and_submitted())
    assert submitted == called == body
