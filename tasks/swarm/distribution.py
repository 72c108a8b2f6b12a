"""Work distribution: dependency-aware list scheduling of tasks onto agents' slots (pure).

Every strategy is list scheduling: take the most urgent task whose dependencies are all placed,
put it on the agent slot where it *finishes* earliest (a task starts after its dependencies
finish; duration / agent speed; an agent with concurrency c has c slots). Strategies differ only
in what "most urgent" means and how ties between equally early slots are broken:

- `speed`: critical path first (largest bottom level: the task's duration plus the longest chain
  of work after it), longest task first among equals (LPT). Ties go to the fastest agent.
- `balanced`: the same order; ties go to a specialist for the task's type, then to the least
  loaded agent — the preference never delays a task.
- `8020`: *value first*. Value is the priority score per unit of duration; the most valuable
  fifth of the tasks (plus whatever they depend on) is scheduled before everything else, in
  value order; the remaining work follows in `speed` order so the tail stays tight. It never
  means "80 % of the work to 20 % of the agents".

The plan reports its makespan and the lower bound max(W / capacity, critical path, longest
task) (durations divided by the fastest speed; capacity = sum of speed x concurrency), so any
strategy's distance from optimal is visible (`bench/distribution_bench.py`).
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import get_args

from tasks.graph import ancestors, bottom_levels, critical_path, validate_graph
from tasks.swarm.models import (
    Agent,
    Assignment,
    PriorityAnalysis,
    Strategy,
    SwarmRequest,
    WorkPlan,
)


@dataclass(frozen=True)
class PlanTask:
    id: str
    duration: float  # at speed 1
    dependencies: tuple[str, ...] = ()
    type: str = ""
    score: float = 50.0


@dataclass(frozen=True)
class PlanAgent:
    id: str
    speed: float = 1.0
    concurrency: int = 1
    specializations: tuple[str, ...] = ()


@dataclass
class Placement:
    task_id: str
    agent_id: str
    slot: int
    start: float
    finish: float
    order: int
    value_first: bool


@dataclass
class Schedule:
    strategy: str
    placements: list[Placement]
    makespan: float
    lower_bound: float
    total_work: float  # at speed 1
    critical_path: float  # at the fastest agent's speed, like the makespan and the bound
    critical_path_nodes: list[str] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return self.makespan / self.lower_bound if self.lower_bound else 1.0


SCHEDULING_STRATEGIES: tuple[str, ...] = get_args(Strategy)


def _graph(tasks: Sequence[PlanTask]) -> dict[str, list[str]]:
    return {t.id: list(t.dependencies) for t in tasks}


def value_first_set(tasks: Sequence[PlanTask]) -> tuple[list[str], set[str]]:
    """The most valuable fifth by score per unit of duration (in value order) and that set
    closed over dependencies (what must run for that value to be delivered)."""
    ranked = sorted(tasks, key=lambda t: (-t.score / t.duration, t.id))
    top = [t.id for t in ranked[: max(1, math.ceil(len(tasks) / 5))]]
    return top, ancestors(_graph(tasks), top)


def lower_bound(
    tasks: Sequence[PlanTask], agents: Sequence[PlanAgent]
) -> tuple[float, float, float]:
    """(bound, total work at speed 1, critical path at the fastest speed): the bound is
    max(W / capacity, critical path / fastest speed, longest task / fastest speed), in the
    makespan's time base (durations divided by speed), as is the critical path returned."""
    total = sum(t.duration for t in tasks)
    capacity = sum(a.speed * a.concurrency for a in agents)
    fastest = max(a.speed for a in agents)
    cp, _ = critical_path(_graph(tasks), {t.id: t.duration for t in tasks})
    longest = max(t.duration for t in tasks)
    return max(total / capacity, cp / fastest, longest / fastest), total, cp / fastest


def plan(
    tasks: Sequence[PlanTask],
    agents: Sequence[PlanAgent],
    strategy: str = "8020",
) -> Schedule:
    """Assign every task to an agent slot with planned start/finish times (ms at speed 1)."""
    if strategy not in SCHEDULING_STRATEGIES:
        raise ValueError(
            f"unknown strategy {strategy!r}; expected one of {list(SCHEDULING_STRATEGIES)}"
        )
    if not agents:
        raise ValueError("at least one agent is needed to plan work")
    graph = _graph(tasks)
    validate_graph(graph, "task")
    by_id = {t.id: t for t in tasks}
    level = bottom_levels(graph, {t.id: t.duration for t in tasks})
    top, closed = value_first_set(tasks) if strategy == "8020" else ([], set())
    value_rank = {tid: i for i, tid in enumerate(top)}

    # slots: (agent index, slot number), each with its busy intervals (sorted by start)
    slots = [(ai, s) for ai, a in enumerate(agents) for s in range(a.concurrency)]
    busy: list[list[tuple[float, float]]] = [[] for _ in slots]
    load = [0.0] * len(agents)
    specialists = {
        t.type: {ai for ai, a in enumerate(agents) if t.type in a.specializations} for t in tasks
    }
    waiting = {t.id: len(t.dependencies) for t in tasks}
    dependents: dict[str, list[str]] = {t.id: [] for t in tasks}
    for t in tasks:
        for d in t.dependencies:
            dependents[d].append(t.id)
    # 8020 keeps two queues: value-first tasks in value order, and the rest by latest start
    # against the makespan `speed` achieves; a value-first task goes first unless a critical
    # task would otherwise slip past that makespan.
    target = plan(tasks, agents, "speed").makespan if strategy == "8020" else 0.0
    valued: list[tuple] = []
    others: list[tuple] = []

    def push(t: PlanTask) -> None:
        if t.id in closed:
            heapq.heappush(valued, ((value_rank.get(t.id, -1), -level[t.id], t.id), t.id))
        else:
            heapq.heappush(others, ((-level[t.id], -t.duration, t.id), t.id))

    for t in tasks:
        if not t.dependencies:
            push(t)
    finish: dict[str, float] = {}
    placements: list[Placement] = []
    while valued or others:
        if valued and others:
            now = min((b[-1][1] if b else 0.0) for b in busy)
            critical = by_id[others[0][1]]
            slack = target - level[critical.id] - now
            queue = others if slack < by_id[valued[0][1]].duration else valued
        else:
            queue = valued or others
        _, tid = heapq.heappop(queue)
        task = by_id[tid]
        ready = max((finish[d] for d in task.dependencies), default=0.0)
        best: tuple | None = None
        for si, (ai, _s) in enumerate(slots):
            agent = agents[ai]
            length = task.duration / agent.speed
            begin = _earliest_gap(busy[si], ready, length)
            end = begin + length
            if strategy == "speed":
                key = (round(end, 6), -agent.speed, load[ai], si)
            else:
                key = (round(end, 6), ai not in specialists[task.type], load[ai], si)
            if best is None or key < best[0]:
                best = (key, si, begin, end)
        assert best is not None
        _, si, start, end = best
        ai, s = slots[si]
        bisect.insort(busy[si], (start, end))
        load[ai] += end - start
        finish[tid] = end
        placements.append(
            Placement(tid, agents[ai].id, s, start, end, len(placements), tid in closed)
        )
        for c in dependents[tid]:
            waiting[c] -= 1
            if waiting[c] == 0:
                push(by_id[c])
    bound, total, cp = lower_bound(tasks, agents)
    _, cp_nodes = critical_path(graph, {t.id: t.duration for t in tasks})
    return Schedule(
        strategy=strategy,
        placements=placements,
        makespan=max(finish.values(), default=0.0),
        lower_bound=bound,
        total_work=total,
        critical_path=cp,
        critical_path_nodes=cp_nodes,
    )


def _earliest_gap(busy: list[tuple[float, float]], ready: float, length: float) -> float:
    """The earliest start >= `ready` where `length` fits between a slot's busy intervals."""
    start = ready
    first = max(0, bisect.bisect_left(busy, (ready, ready)) - 1)
    for begin, end in busy[first:]:
        if begin - start >= length - 1e-9:
            return start
        start = max(start, end)
    return start


def check_schedule(
    schedule: Schedule, tasks: Sequence[PlanTask], agents: Mapping[str, PlanAgent]
) -> None:
    """Raise AssertionError if the schedule breaks a dependency or overlaps work on a slot."""
    by_id = {t.id: t for t in tasks}
    at = {p.task_id: p for p in schedule.placements}
    assert set(at) == set(by_id), "every task is placed exactly once"
    for p in schedule.placements:
        for d in by_id[p.task_id].dependencies:
            assert at[d].finish <= p.start + 1e-6, f"{p.task_id} starts before {d} finishes"
        assert p.slot < agents[p.agent_id].concurrency
    per_slot: dict[tuple[str, int], list[Placement]] = {}
    for p in schedule.placements:
        per_slot.setdefault((p.agent_id, p.slot), []).append(p)
    for run in per_slot.values():
        run.sort(key=lambda p: p.start)
        for a, b in itertools.pairwise(run):
            assert a.finish <= b.start + 1e-6, f"{a.task_id} and {b.task_id} overlap"


def plan_work(request: SwarmRequest, analysis: PriorityAnalysis, agents: list[Agent]) -> WorkPlan:
    """The request's tasks scheduled on the formed agents with `request.optimization_strategy`."""
    scores = analysis.score_of()
    schedule = plan(
        [
            PlanTask(t.id, t.estimated_duration_ms, tuple(t.dependencies), t.type, scores[t.id])
            for t in request.tasks
        ],
        [PlanAgent(a.agent_id, a.speed, a.concurrency, tuple(a.specializations)) for a in agents],
        request.optimization_strategy,
    )
    return WorkPlan(
        strategy=request.optimization_strategy,
        assignments=[
            Assignment(
                task_id=p.task_id,
                agent_id=p.agent_id,
                slot=p.slot,
                planned_start_ms=round(p.start, 3),
                planned_finish_ms=round(p.finish, 3),
                order=p.order,
                value_first=p.value_first,
            )
            for p in schedule.placements
        ],
        makespan_ms=round(schedule.makespan, 3),
        lower_bound_ms=round(schedule.lower_bound, 3),
        ratio=round(schedule.ratio, 4),
        total_work_ms=round(schedule.total_work, 3),
        critical_path_ms=round(schedule.critical_path, 3),
        critical_path=schedule.critical_path_nodes,
    )
