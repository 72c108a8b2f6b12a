"""Work distribution: dependencies and concurrency respected, value first for '8020', makespan
close to the lower bound, never '80 % of the work to 20 % of the agents'."""

from __future__ import annotations

import random
import statistics

import pytest

from tasks.errors import DependencyCycle, InvalidInput
from tasks.swarm.distribution import (
    SCHEDULING_STRATEGIES,
    PlanAgent,
    PlanTask,
    check_schedule,
    plan,
    value_first_set,
)


def _random_tasks(rng: random.Random, n: int, chains: bool) -> list[PlanTask]:
    tasks: list[PlanTask] = []
    for i in range(n):
        deps = (f"t{i - 1}",) if chains and i % 5 else ()
        duration, score = rng.uniform(50, 2000), rng.randint(1, 100)
        tasks.append(PlanTask(f"t{i}", duration, deps, "analysis", score))
    return tasks


@pytest.mark.parametrize("strategy", SCHEDULING_STRATEGIES)
@pytest.mark.parametrize("chains", [False, True])
def test_schedule_respects_dependencies_and_is_near_the_lower_bound(strategy, chains):
    rng = random.Random(3)
    tasks = _random_tasks(rng, 300, chains)
    agents = [PlanAgent(f"a{i}") for i in range(8)]
    schedule = plan(tasks, agents, strategy)
    check_schedule(schedule, tasks, {a.id: a for a in agents})
    assert schedule.makespan >= schedule.lower_bound - 1e-6
    assert schedule.ratio <= 1.15


def test_concurrency_and_speed_count_as_capacity():
    tasks = [PlanTask(f"t{i}", 1000.0) for i in range(8)]
    fast = PlanAgent("fast", speed=2.0, concurrency=2)
    schedule = plan(tasks, [fast], "speed")
    check_schedule(schedule, tasks, {"fast": fast})
    assert schedule.makespan == pytest.approx(2000.0)  # 8 s of work / (2 slots x speed 2)
    assert {p.slot for p in schedule.placements} == {0, 1}


def test_8020_schedules_the_most_valuable_fifth_first():
    rng = random.Random(5)
    tasks = _random_tasks(rng, 200, chains=False)
    agents = [PlanAgent(f"a{i}") for i in range(6)]
    top, _ = value_first_set(tasks)
    assert len(top) == 40
    value = plan(tasks, agents, "8020")
    first = sorted(value.placements, key=lambda p: p.order)[: len(top)]
    assert {p.task_id for p in first} == set(top)
    fast = plan(tasks, agents, "speed")
    start = {p.task_id: p.start for p in fast.placements}
    value_start = {p.task_id: p.start for p in value.placements}
    assert statistics.mean(value_start[t] for t in top) < statistics.mean(start[t] for t in top)
    assert value.ratio <= 1.05


def test_8020_never_concentrates_the_work_on_a_fifth_of_the_agents():
    rng = random.Random(9)
    tasks = _random_tasks(rng, 200, chains=False)
    agents = [PlanAgent(f"a{i}") for i in range(10)]
    load: dict[str, float] = {}
    for p in plan(tasks, agents, "8020").placements:
        load[p.agent_id] = load.get(p.agent_id, 0.0) + p.finish - p.start
    fair = sum(load.values()) / len(agents)
    assert len(load) == 10 and max(load.values()) <= 1.1 * fair


def test_balanced_prefers_a_specialist_when_it_costs_nothing():
    tasks = [PlanTask("t0", 100.0, (), "validation")]
    agents = [PlanAgent("generalist"), PlanAgent("validator", specializations=("validation",))]
    assert plan(tasks, agents, "balanced").placements[0].agent_id == "validator"


def test_cycle_is_named_in_error():
    tasks = [PlanTask("a", 1.0, ("c",)), PlanTask("b", 1.0, ("a",)), PlanTask("c", 1.0, ("b",))]
    with pytest.raises(DependencyCycle, match=r"task cycle: (\w) -> \w -> \w -> \1") as info:
        plan(tasks, [PlanAgent("x")])
    assert set(info.value.cycle) == {"a", "b", "c"}


def test_unknown_dependency_is_named():
    with pytest.raises(InvalidInput, match="'ghost'"):
        plan([PlanTask("a", 1.0, ("ghost",))], [PlanAgent("x")])
