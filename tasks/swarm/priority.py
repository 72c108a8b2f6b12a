"""Step 1, priority analysis: Claude when a key is configured, a deterministic heuristic
otherwise — and the result always says which produced it (pure: no Prefect).

The heuristic scores each task 1-100 from what the task set itself says:
45 % its declared priority, 25 % how much of the set waits on it (transitive dependents),
20 % its position on the critical path (work still ahead of it when it starts), 10 % shortness
(a short task delivers its value sooner). Claude gets the same facts and must answer through a
tool whose input schema is `PriorityAnalysis`; an answer that fails validation or does not score
exactly the submitted tasks is a fallback, labelled with the reason. The Prefect task that asks
Claude caches successful answers by their inputs (`tasks/swarm/prefect_tasks.py`), so a re-run does
not pay for the same analysis twice; a fallback is never cached, so a transient 429 is retried on
the next run.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from tasks.claude import Claude
from tasks.errors import LLMUnavailable
from tasks.graph import batches, bottom_levels, critical_path, dependents
from tasks.settings import Settings
from tasks.swarm.models import PRIORITY_WEIGHT, PriorityAnalysis, SwarmTask, TaskScore

NO_KEY = "no Anthropic API key configured (REACTOR_ANTHROPIC_API_KEY)"
HEURISTIC_CONFIDENCE = 0.6
SYSTEM = (
    "You prioritise work for a swarm of software agents. Score every task 1-100 (higher = "
    "more valuable to finish early), considering its declared priority, how much other work "
    "depends on it, whether it is on the critical path, and its duration. Give one sentence of "
    "reasoning per task, an overall confidence 0-1, and how many agents the work can keep busy. "
    "Answer only by calling the tool."
)


@cache
def prompt_version() -> str:
    """A hash of this module, which builds Claude's prompt: a changed prompt is asked afresh."""
    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]


def recommended_agents(tasks: list[SwarmTask]) -> int:
    """How many agents the work can keep busy: total work over the critical path, capped by
    the widest batch of independent tasks."""
    graph = {t.id: t.dependencies for t in tasks}
    cp, _ = critical_path(graph, {t.id: t.estimated_duration_ms for t in tasks})
    total = sum(t.estimated_duration_ms for t in tasks)
    widest = max(len(b) for b in batches(graph))
    return max(1, min(64, widest, math.ceil(total / cp)))


def heuristic(tasks: list[SwarmTask], fallback_reason: str | None = None) -> PriorityAnalysis:
    """Deterministic scores from priority, dependents, critical-path position and duration."""
    graph = {t.id: t.dependencies for t in tasks}
    level = bottom_levels(graph, {t.id: t.estimated_duration_ms for t in tasks})
    cp = max(level.values())
    longest = max(t.estimated_duration_ms for t in tasks)
    others = max(1, len(tasks) - 1)
    scores = []
    for t in tasks:
        waiting = len(dependents(graph, t.id))
        ahead = level[t.id] / cp
        short = 1 - t.estimated_duration_ms / longest
        value = (
            0.45 * PRIORITY_WEIGHT[t.priority]
            + 0.25 * waiting / others
            + 0.20 * ahead
            + 0.10 * short
        )
        scores.append(
            TaskScore(
                task_id=t.id,
                score=max(1, min(100, round(1 + 99 * value))),
                reasoning=(
                    f"{t.priority} priority; {waiting} task(s) wait on it; "
                    f"{ahead:.0%} of the critical path is ahead of it; "
                    f"{t.estimated_duration_ms / 1000:g} s"
                ),
            )
        )
    return PriorityAnalysis(
        scores=scores,
        confidence=HEURISTIC_CONFIDENCE,
        recommended_agents=recommended_agents(tasks),
        reasoning="heuristic: 45% priority, 25% dependents, 20% critical path, 10% shortness",
        source="heuristic",
        fallback_reason=fallback_reason,
    )


def _prompt(tasks: list[SwarmTask]) -> str:
    facts = [
        {
            "task_id": t.id,
            "type": t.type,
            "priority": t.priority,
            "dependencies": t.dependencies,
            "estimated_duration_ms": t.estimated_duration_ms,
            "description": t.description,
        }
        for t in tasks
    ]
    return "Prioritise these tasks. Score every task_id exactly once.\n" + json.dumps(
        facts, indent=1
    )


def ask_claude(
    tasks: list[SwarmTask], settings: Settings, http_client: Any | None = None
) -> PriorityAnalysis:
    """Claude's analysis, validated; LLMUnavailable(reason) when it cannot give a usable one."""
    answer = Claude(settings, http_client=http_client).structured(
        _prompt(tasks), PriorityAnalysis, system=SYSTEM, tool="record_priorities"
    )
    expected = {t.id for t in tasks}
    got = [s.task_id for s in answer.scores]
    if set(got) != expected or len(got) != len(expected):
        missing, extra = sorted(expected - set(got)), sorted(set(got) - expected)
        raise LLMUnavailable(
            f"answer does not score each task exactly once (missing {missing}, unknown {extra})"
        )
    return answer.model_copy(update={"source": "claude", "fallback_reason": None})


Ask = Callable[[list[SwarmTask], Settings, Any], PriorityAnalysis]


def analyze(
    tasks: list[SwarmTask],
    settings: Settings,
    http_client: Any | None = None,
    ask: Ask = ask_claude,
) -> PriorityAnalysis:
    """Claude's analysis when configured and usable, else the heuristic naming why. `ask` is
    how Claude is asked (the flow passes its cached Prefect task); `http_client` is handed to
    the SDK (tests pass one over an httpx MockTransport)."""
    if not settings.claude_configured:
        return heuristic(tasks, NO_KEY)
    try:
        return ask(tasks, settings, http_client)
    except LLMUnavailable as exc:
        return heuristic(tasks, f"Claude unavailable: {exc.reason}")
