"""The swarm scenario's models: everything that crosses a boundary (request, analysis, plan,
execution records, result)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tasks.errors import InvalidInput
from tasks.graph import validate_graph

Priority = Literal["critical", "high", "medium", "low"]
Strategy = Literal["8020", "balanced", "speed"]
BUILTIN_TYPES = ("analysis", "optimization", "coordination", "validation")
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
    estimated_duration_ms: float
    description: str = ""
    timeout_s: float = Field(default=30.0, gt=0)
    retries: int = Field(default=1, ge=0, le=10)

    @field_validator("estimated_duration_ms")
    @classmethod
    def _positive(cls, value: float) -> float:
        if not value > 0:
            raise ValueError(f"estimated_duration_ms must be > 0, got {value}")
        return value


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


class SwarmRequest(BaseModel):
    """Input of the swarm flow. Rejected with a clear error: duplicate ids, unknown dependency,
    a dependency cycle (named), non-positive durations."""

    model_config = ConfigDict(extra="forbid")

    tasks: list[SwarmTask] = Field(min_length=1)
    agents: list[AgentSpec] = Field(default_factory=list)
    max_agents: int = Field(default=4, ge=1, le=64)
    optimization_strategy: Strategy = "8020"
    min_success_rate: float = Field(default=0.8, ge=0, le=1)
    handlers: dict[str, HandlerSpec] = Field(default_factory=dict)
    lease_s: float = Field(default=300.0, gt=0)

    @model_validator(mode="after")
    def _valid_graph(self) -> SwarmRequest:
        seen: set[str] = set()
        duplicates = sorted({t.id for t in self.tasks if t.id in seen or seen.add(t.id)})
        if duplicates:
            raise InvalidInput(f"duplicate task ids: {', '.join(map(repr, duplicates))}")
        validate_graph(self.graph(), "task")
        unknown = sorted({t.type for t in self.tasks} - set(BUILTIN_TYPES) - set(self.handlers))
        if unknown:
            raise InvalidInput(
                f"task types {unknown} have no handler; use one of {list(BUILTIN_TYPES)} "
                "or register them under `handlers`"
            )
        names = [a.name for a in self.agents]
        if len(set(names)) != len(names):
            raise InvalidInput(f"duplicate agent names in {names}")
        return self

    def graph(self) -> dict[str, list[str]]:
        return {t.id: list(t.dependencies) for t in self.tasks}


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


class WorkPlan(BaseModel):
    """Where and when each task is planned to run, and how far that is from optimal."""

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


class AgentUtilisation(BaseModel):
    agent_id: str
    busy_ms: float
    tasks: int
    utilisation: float


class TelemetrySummary(BaseModel):
    trace_id: str | None
    spans: int
    timeline: list[dict[str, Any]]
    utilisation: list[AgentUtilisation]
    bottlenecks: list[str]
    mean_duration_ms: float
    recommendations: list[str]


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
