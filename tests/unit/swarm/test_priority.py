"""Priority analysis: the deterministic heuristic, and the Claude path through the real SDK over
an httpx.MockTransport — each outcome ends in the right `source` and a correct result."""

from __future__ import annotations

import json

import httpx2 as httpx  # anthropic 2.x speaks httpx2 (same API as httpx)

from tasks.settings import Settings
from tasks.swarm.models import SwarmRequest
from tasks.swarm.priority import analyze, heuristic

REQUEST = SwarmRequest.model_validate(
    {
        "tasks": [
            {"id": "root", "type": "analysis", "priority": "critical",
             "estimated_duration_ms": 1000},
            {"id": "mid", "type": "optimization", "priority": "high",
             "estimated_duration_ms": 2000, "dependencies": ["root"]},
            {"id": "leaf", "type": "validation", "priority": "low",
             "estimated_duration_ms": 500, "dependencies": ["mid"]},
            {"id": "side", "type": "analysis", "priority": "low", "estimated_duration_ms": 400},
        ]
    }
)  # fmt: skip
TASKS = REQUEST.tasks
CLAUDE_SCORES = {"root": 95, "mid": 80, "leaf": 30, "side": 10}


def _message(tool_input) -> dict:
    return {
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-test",
        "content": [
            {"type": "tool_use", "id": "tu_1", "name": "record_priorities", "input": tool_input}
        ],
        "stop_reason": "tool_use", "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 5},
    }  # fmt: skip


def _answer(scores=CLAUDE_SCORES) -> dict:
    return {
        "scores": [
            {"task_id": k, "score": v, "reasoning": f"{k} matters"} for k, v in scores.items()
        ],
        "confidence": 0.9,
        "recommended_agents": 2,
        "reasoning": "root unblocks the chain",
    }


def _settings(tmp_path, **extra) -> Settings:
    return Settings(
        anthropic_api_key="sk-ant-test-key-123456",
        llm_max_retries=2,
        coordination_dir=tmp_path,
        **extra,
    )


def _client(handler) -> tuple[httpx.Client, list]:
    seen: list = []

    def record(request):
        seen.append(request)
        return handler(request, len(seen))

    return httpx.Client(transport=httpx.MockTransport(record)), seen


def test_heuristic_is_deterministic_and_labelled():
    first, second = heuristic(TASKS, "no key"), heuristic(TASKS, "no key")
    assert first == second
    assert first.source == "heuristic" and first.fallback_reason == "no key"
    scores = first.score_of()
    assert scores["root"] > scores["mid"] > scores["leaf"]  # critical head of the chain first
    assert scores["root"] > scores["side"]
    assert all(1 <= s <= 100 for s in scores.values())
    assert first.recommended_agents == 2  # the chain and the side task


def test_without_a_key_the_heuristic_says_why(tmp_path):
    result = analyze(TASKS, Settings(anthropic_api_key=None, coordination_dir=tmp_path))
    assert result.source == "heuristic" and "no Anthropic API key" in result.fallback_reason


def test_valid_claude_output_is_used(tmp_path):
    client, seen = _client(lambda r, n: httpx.Response(200, json=_message(_answer())))
    result = analyze(TASKS, _settings(tmp_path), client)
    assert result.source == "claude" and result.fallback_reason is None
    assert result.score_of() == CLAUDE_SCORES and result.confidence == 0.9
    body = json.loads(seen[0].content)
    assert body["tool_choice"]["name"] == "record_priorities"
    assert "leaf" in body["messages"][0]["content"]


def test_malformed_json_falls_back_to_the_heuristic(tmp_path):
    client, _ = _client(
        lambda r, n: httpx.Response(
            200, content=b"{not json", headers={"content-type": "application/json"}
        )
    )
    result = analyze(TASKS, _settings(tmp_path), client)
    assert result.source == "heuristic" and "malformed" in result.fallback_reason
    assert result.score_of() == heuristic(TASKS).score_of()


def test_answer_missing_a_task_falls_back(tmp_path):
    partial = {k: v for k, v in CLAUDE_SCORES.items() if k != "side"}
    client, _ = _client(lambda r, n: httpx.Response(200, json=_message(_answer(partial))))
    result = analyze(TASKS, _settings(tmp_path), client)
    assert result.source == "heuristic" and "missing ['side']" in result.fallback_reason


def test_429_with_retry_after_is_retried_then_claude_answers(tmp_path):
    def handler(request, n):
        if n == 1:
            error = {"type": "error", "error": {"type": "rate_limit_error", "message": "slow"}}
            return httpx.Response(429, headers={"retry-after": "1"}, json=error)
        return httpx.Response(200, json=_message(_answer()))

    client, seen = _client(handler)
    result = analyze(TASKS, _settings(tmp_path), client)
    assert result.source == "claude" and result.score_of() == CLAUDE_SCORES
    assert len(seen) == 2


def test_persistent_529_falls_back_naming_the_status(tmp_path):
    overloaded = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    client, seen = _client(
        lambda r, n: httpx.Response(529, headers={"retry-after": "0"}, json=overloaded)
    )
    result = analyze(TASKS, _settings(tmp_path), client)
    assert result.source == "heuristic" and "529" in result.fallback_reason
    assert len(seen) == 3


def test_timeout_falls_back_naming_the_timeout(tmp_path):
    def handler(request, n):
        raise httpx.ReadTimeout("read timed out", request=request)

    client, _ = _client(handler)
    settings = _settings(tmp_path).model_copy(update={"llm_max_retries": 0, "llm_timeout_s": 0.5})
    result = analyze(TASKS, settings, client)
    assert result.source == "heuristic" and "timed out" in result.fallback_reason
    assert result.score_of() == heuristic(TASKS).score_of()
