"""A work plan for tests: the tasks in turn on one agent's one slot."""

from __future__ import annotations

from collections.abc import Iterable

from tasks.swarm.models import Assignment, WorkPlan


def one_agent_plan(agent_id: str, task_ids: Iterable[str]) -> WorkPlan:
    assignments = [
        Assignment(
            task_id=task_id,
            agent_id=agent_id,
            slot=0,
            planned_start_ms=n,
            planned_finish_ms=n + 1,
            order=n,
        )
        for n, task_id in enumerate(task_ids)
    ]
    return WorkPlan(
        strategy="8020", assignments=assignments, makespan_ms=1, lower_bound_ms=1, ratio=1,
        total_work_ms=1, critical_path_ms=1, critical_path=[],
    )  # fmt: skip
