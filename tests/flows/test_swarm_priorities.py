"""The swarm's priority analysis by Claude (the SDK over an httpx MockTransport): an answer is
cached across runs, a fallback is not."""

from __future__ import annotations

import asyncio
import json
import uuid

import httpx2
import pytest
from prefect import flow

from tasks.swarm.models import SwarmRequest
from tasks.swarm.prefect_tasks import analyze_priorities

CLAUDE_SEEN: list = []


def _claude_answers(request: httpx2.Request) -> httpx2.Response:
    CLAUDE_SEEN.append(request)
    facts = json.loads(json.loads(request.content)["messages"][0]["content"].split("\n", 1)[1])
    if facts[0]["description"].startswith("overloaded"):
        error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
        return httpx2.Response(529, headers={"retry-after": "0"}, json=error)
    answer = {
        "scores": [{"task_id": f["task_id"], "score": 50, "reasoning": "ok"} for f in facts],
        "confidence": 0.9, "recommended_agents": 1, "reasoning": "fine",
    }  # fmt: skip
    return httpx2.Response(200, json={
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-test",
        "content": [
            {"type": "tool_use", "id": "tu_1", "name": "record_priorities", "input": answer}
        ],
        "stop_reason": "tool_use", "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 5},
    })  # fmt: skip


@flow
async def priorities_only(request: SwarmRequest):
    return analyze_priorities(
        request, httpx2.Client(transport=httpx2.MockTransport(_claude_answers))
    )


def _unique_request(description: str) -> SwarmRequest:
    tag = uuid.uuid4().hex[:8]  # a previous session's cache never answers
    return SwarmRequest.model_validate(
        {"tasks": [{"id": f"t-{tag}", "type": "analysis", "estimated_duration_ms": 100,
                    "description": f"{description} {tag}"}]}
    )  # fmt: skip


@pytest.fixture
def claude_key(reactor_env, monkeypatch):
    monkeypatch.setenv("REACTOR_ANTHROPIC_API_KEY", "sk-ant-test-key-123456")
    monkeypatch.setenv("REACTOR_LLM_MAX_RETRIES", "0")
    CLAUDE_SEEN.clear()


def test_claude_priorities_are_cached_across_runs(claude_key):
    request = _unique_request("cacheable")
    first = asyncio.run(priorities_only(request))
    second = asyncio.run(priorities_only(request))
    assert first.source == second.source == "claude"
    assert second == first and len(CLAUDE_SEEN) == 1  # the second run asked nobody


def test_a_fallback_is_not_cached(claude_key):
    overloaded = _unique_request("overloaded")
    first = asyncio.run(priorities_only(overloaded))
    assert first.source == "heuristic" and "529" in first.fallback_reason
    again = asyncio.run(priorities_only(overloaded))
    assert again.source == "heuristic" and len(CLAUDE_SEEN) == 2  # Claude was asked again
