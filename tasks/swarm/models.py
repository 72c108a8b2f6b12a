"""The swarm scenario's models: everything that crosses a boundary (request, analysis, plan,
execution records, result)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SkipValidation,
    model_validator,
)

from tasks.claims.models import LeaseSeconds, WorkItem
from tasks.errors import InvalidInput
from tasks.fields import PositiveNumber
from tasks.graph import validate_graph

Priority = Literal["critical", "high", "medium", "low"]
Strategy = Literal["8020", "balanced", "speed"]
BUILTIN_TYPES = ("analysis", "optimization", "coordination", "validation")
# the other scenarios' flows, run as subflows of the swarm run (tasks/swarm/scenarios.py)
SCENARIO_TYPES = ("spr.batch", "trace.check", "worktree.health")
PRIORITY_WEIGHT: dict[str, float] = {"critical": 1.0, "high": 0.75, "medium": 0.5, "low": 0.25}


class SwarmTask(BaseModel):
    """One unit of work. `type` is a built-in (analysis|optimization|coordination|validation)
    or a type registered in the request's `handlers`."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=128)
    type: str = Field(min_length=1)
    priority: Priority = "medium"
    payload: dict[str, Any] = Field(default_factory=dict)
    dependencies: list[str] = Field(default_factory=list)
    estimated_duration_ms: PositiveNumber
    description: str = ""
    timeout_s: float = Field(default=30.0, gt=0)
    retries: int = Field(default=1, ge=0, le=10)


class AgentSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    specializations: list[str] = Field(default_factory=list)
    concurrency: int = Field(default=1, ge=1, le=32)
    speed: float = Field(default=1.0, gt=0)
    team: str = "swarm"


class HandlerSpec(BaseModel):
    """How a task type runs: a Python callable `module:function`, or an HTTP endpoint that
    receives a POST (JSON body, W3C trace headers) and answers JSON."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["python", "http"]
    target: str = Field(min_length=1)


class QueueSelection(BaseModel):
    """What a drain run takes from the ledger's queue: up to `limit` claimable items of `types`
    (default: every type this run has a handler for) with priority >= `priority_at_least`,
    closed under dependencies. Each taken item gets `timeout_s` per attempt and one attempt
    per drain: the ledger's `max_attempts` is the retry policy across drains."""

    model_config = ConfigDict(extra="forbid")

    limit: int = Field(default=100, ge=1, le=10_000)
    types: list[str] | None = Field(default=None, min_length=1)
    priority_at_least: Priority | None = None
    timeout_s: float = Field(default=300.0, gt=0)


class SwarmRequest(BaseModel):
    """Input of the swarm flow: inline `tasks`, or a `queue` selection (a drain run). Rejected
    with a clear error: duplicate ids, unknown dependency, a dependency cycle (named),
    non-positive durations, both or neither of `tasks` and `queue`."""

    model_config = ConfigDict(extra="forbid")

    tasks: list[SwarmTask] = Field(default_factory=list)
    queue: QueueSelection | None = None
    agents: list[AgentSpec] = Field(default_factory=list)
    max_agents: int = Field(default=4, ge=1, le=64)
    optimization_strategy: Strategy = "8020"
    min_success_rate: float = Field(default=0.8, ge=0, le=1)
    handlers: dict[str, HandlerSpec] = Field(default_factory=dict)
    lease_s: LeaseSeconds = 300.0
    # an agent of this run not heard from for this long counts as dead: the next run's sweep
    # marks it so (the run's agents beat every third of it while it runs)
    heartbeat_timeout_s: float = Field(default=300.0, gt=0)

    @model_validator(mode="after")
    def _valid_graph(self) -> SwarmRequest:
        if (self.queue is None) == (not self.tasks):
            raise InvalidInput(
                "give either `tasks` (an inline run) or `queue` (a drain run of the ledger's "
                f"queue), not {'both' if self.tasks else 'neither'}"
            )
        seen: set[str] = set()
        duplicates = sorted({t.id for t in self.tasks if t.id in seen or seen.add(t.id)})
        if duplicates:
            raise InvalidInput(f"duplicate task ids: {', '.join(map(repr, duplicates))}")
        validate_graph(self.graph(), "task")
        known = {*BUILTIN_TYPES, *SCENARIO_TYPES, *self.handlers}
        unknown = sorted({t.type for t in self.tasks} - known)
        if unknown:
            raise InvalidInput(
                f"task types {unknown} have no handler; use one of {sorted(known)} "
                "or register them under `handlers`"
            )
        if self.queue is not None and self.queue.types:
            unhandled = sorted(set(self.queue.types) - known)
            if unhandled:
                raise InvalidInput(
                    f"queue.types {unhandled} have no handler; use one of {sorted(known)} or "
                    "register them under `handlers`"
                )
        names = [a.name for a in self.agents]
        if len(set(names)) != len(names):
            raise InvalidInput(f"duplicate agent names in {names}")
        return self

    def graph(self) -> dict[str, list[str]]:
        return {t.id: list(t.dependencies) for t in self.tasks}

    def handled_types(self) -> list[str]:
        """Every task type this request can run: built-ins, scenarios and its handlers."""
        return sorted({*BUILTIN_TYPES, *SCENARIO_TYPES, *self.handlers})


class TaskScore(BaseModel):
    task_id: str
    score: int = Field(ge=1, le=100)
    reasoning: str


class PriorityAnalysis(BaseModel):
    """Priority analysis of a task set: a 1-100 score per task (higher = more valuable to do
    early), the reasoning, a confidence 0-1 and how many agents the work can keep busy."""

    scores: list[TaskScore]
    confidence: float = Field(ge=0, le=1)
    recommended_agents: int = Field(ge=1, le=64)
    reasoning: str = ""
    source: Literal["claude", "heuristic"] = "heuristic"
    fallback_reason: str | None = None

    def score_of(self) -> dict[str, int]:
        return {s.task_id: s.score for s in self.scores}


class Agent(BaseModel):
    """A formed agent (registered in agent_status.json)."""

    agent_id: str
    name: str
    team: str
    specializations: list[str]
    concurrency: int
    speed: float


class Assignment(BaseModel):
    task_id: str
    work_item_id: str = ""
    claim_id: str = ""  # the claim's id (fencing token) once claimed
    agent_id: str
    slot: int
    planned_start_ms: float
    planned_finish_ms: float
    order: int  # position in the strategy's scheduling order (0 = scheduled first)
    value_first: bool = False  # in the most valuable fifth ('8020')
    from_queue: bool = False  # taken by a drain run: a skipped item goes back to the queue


class WorkPlan(BaseModel):
    """Where and when each task is planned to run, and how far that is from optimal. Every
    time is planned wall time: a task's estimated duration divided by its agent's speed; the
    critical path and the bound at the fastest agent's speed (so both are <= the makespan);
    `total_work_ms` alone is at speed 1 (the work to share out)."""

    strategy: Strategy
    assignments: list[Assignment]
    makespan_ms: float
    lower_bound_ms: float
    ratio: float
    total_work_ms: float
    critical_path_ms: float
    critical_path: list[str]


class ExecutionRecord(BaseModel):
    task_id: str
    work_item_id: str
    agent_id: str
    status: Literal["completed", "failed", "skipped"]
    attempts: int
    duration_ms: float
    started_at: str
    finished_at: str
    result: dict[str, Any] | None = None
    error: str | None = None
    # finished by a dead attempt of this run (the ledger has it under this run's claim): not
    # run again; `attempts` counts this attempt's, so 0
    resumed: bool = False


class AgentUtilisation(BaseModel):
    agent_id: str
    busy_ms: float
    tasks: int
    utilisation: float


class TelemetrySummary(BaseModel):
    """What the run's spans measured. `measured_makespan_ms`: first task start to last task
    end; `handler_startup_ms`: starting the handler worker processes before the first task
    (None: nothing ran in them, or they were already running in this process)."""

    trace_id: str | None
    spans: int
    timeline: list[dict[str, Any]]
    utilisation: list[AgentUtilisation]
    bottlenecks: list[str]
    mean_duration_ms: float
    recommendations: list[str]
    measured_makespan_ms: float = 0.0
    handler_startup_ms: float | None = None


class ResumeReport(BaseModel):
    """What a resumed run found of its dead attempt's work items in the ledger."""

    total: int = 0
    finished: dict[str, str] = Field(default_factory=dict)  # item -> completed | failed
    taken_back: list[str] = Field(default_factory=list)  # held under the dead attempt's token
    lost: dict[str, str] = Field(default_factory=dict)  # item -> who has it now
    fresh: int = 0  # not claimed by the dead attempt: claimed now


class TakenWork(BaseModel):
    """What a drain run took from the queue: `request` carries the taken items as tasks (task
    id = work item id; dependencies inside the selection), `claims` each item's fencing token,
    `dependencies` all of each item's dependencies (the ones outside the selection are
    completed: their results are the task's inputs)."""

    # the run's request with the taken items as tasks: built from a validated request and
    # validated items, and not valid as input (it has both `queue` and `tasks`)
    request: SkipValidation[SwarmRequest]
    claims: dict[str, str] = Field(default_factory=dict)
    dependencies: dict[str, list[str]] = Field(default_factory=dict)
    depth_before: int = 0
    oldest_pending_age_s: float | None = None
    # a resumed run's: what its dead attempt had taken (this batch again) and how it stands
    resumed: ResumeReport | None = None
    unestimated: int = 0  # taken items without an estimated_duration (planned as 1 ms)


class DrainSummary(BaseModel):
    """A drain run's effect on the queue. `returned`: taken items pending again (a failed
    attempt below max_attempts, or skipped because a dependency did not complete); `failed`:
    failed for good (max_attempts reached); `blocked`: pending items that can never run ->
    the failed items they wait on."""

    depth_before: int
    depth_after: int
    taken: int
    completed: int
    failed: int
    returned: int
    oldest_pending_age_s: float | None
    blocked: dict[str, list[str]] = Field(default_factory=dict)
    last_errors: dict[str, str] = Field(default_factory=dict)  # returned/failed -> last error
    # items failed for good in the whole queue (dead letters: out of attempts, a lapsed lease
    # counting as one); `reactor claims blocked` lists them with their last error
    dead_letters: int = 0
    unestimated: int = 0  # taken items without an estimated_duration: the plan is no guide


class SwarmResult(BaseModel):
    """What a swarm run did; `compensations` lists what was undone when the run rolled back."""

    run_id: str
    strategy: Strategy
    analysis: PriorityAnalysis
    agents: list[Agent]
    plan: WorkPlan
    executions: list[ExecutionRecord]
    success_rate: float
    telemetry: TelemetrySummary
    exports: dict[str, list[str]] = Field(default_factory=dict)
    compensations: list[str] = Field(default_factory=list)
    queue: DrainSummary | None = None  # a drain run's effect on the queue


class EnqueueRequest(BaseModel):
    """Input of the `swarm-enqueue` flow: work items for the queue, added all or none.
    `source` names the producer in the run's log and event."""

    model_config = ConfigDict(extra="forbid")

    items: list[WorkItem] = Field(min_length=1, max_length=10_000)
    source: str = Field(default="api", min_length=1, max_length=100)


class EnqueueResult(BaseModel):
    work_item_ids: list[str]
    queue_depth: int  # pending items after the add
