"""The Claude client through the real SDK over an httpx.MockTransport: every failure becomes
LLMUnavailable with a reason; valid output is validated."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx2 as httpx  # anthropic 2.x speaks httpx2 (same API as httpx)
import pytest
from pydantic import BaseModel, Field

from tasks.claude import Claude
from tasks.errors import LLMUnavailable
from tasks.settings import Settings


class Verdict(BaseModel):
    """A test output."""

    score: int = Field(ge=1, le=100)
    reasoning: str


def _message(tool_input) -> dict:
    return {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-test",
        "content": [{"type": "tool_use", "id": "tu_1", "name": "verdict", "input": tool_input}],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 5},
    }


def _claude(handler, **settings) -> tuple[Claude, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request, len(seen))

    s = Settings(
        **{"anthropic_api_key": "sk-ant-test-key-123456", "llm_max_retries": 2, **settings}
    )
    return Claude(s, http_client=httpx.Client(transport=httpx.MockTransport(record))), seen


def ask(claude: Claude) -> Verdict:
    return claude.structured("rate this", Verdict, system="be terse", tool="verdict")


def test_valid_tool_output_is_validated_and_returned():
    claude, seen = _claude(
        lambda r, n: httpx.Response(200, json=_message({"score": 70, "reasoning": "ok"}))
    )
    assert ask(claude) == Verdict(score=70, reasoning="ok")
    body = json.loads(seen[0].content)
    assert body["tool_choice"] == {"type": "tool", "name": "verdict"}
    assert body["tools"][0]["input_schema"]["properties"]["score"]["maximum"] == 100


def test_output_outside_the_schema_is_unavailable_with_reason():
    claude, _ = _claude(
        lambda r, n: httpx.Response(200, json=_message({"score": 900, "reasoning": "x"}))
    )
    with pytest.raises(LLMUnavailable, match="validation"):
        ask(claude)


def test_malformed_json_body_is_unavailable():
    claude, _ = _claude(
        lambda r, n: httpx.Response(
            200, content=b"{not json", headers={"content-type": "application/json"}
        )
    )
    with pytest.raises(LLMUnavailable, match="malformed"):
        ask(claude)


def test_429_with_retry_after_is_retried_then_succeeds():
    def handler(request, n):
        if n == 1:
            return httpx.Response(
                429,
                headers={"retry-after": "1"},
                json={
                    "type": "error",
                    "error": {"type": "rate_limit_error", "message": "slow down"},
                },
            )
        return httpx.Response(200, json=_message({"score": 5, "reasoning": "after wait"}))

    claude, seen = _claude(handler)
    assert ask(claude).reasoning == "after wait"
    assert len(seen) == 2


def test_persistent_529_is_unavailable_naming_the_status():
    overloaded = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    claude, seen = _claude(
        lambda r, n: httpx.Response(529, headers={"retry-after": "0"}, json=overloaded)
    )
    with pytest.raises(LLMUnavailable, match="529"):
        ask(claude)
    assert len(seen) == 3  # first call + 2 SDK retries


def test_timeout_is_unavailable_naming_the_timeout():
    def handler(request, n):
        raise httpx.ReadTimeout("read timed out", request=request)

    claude, _ = _claude(handler, llm_max_retries=0, llm_timeout_s=0.5)
    with pytest.raises(LLMUnavailable, match="timed out"):
        Claude.structured(claude, "x", Verdict, system="s", tool="verdict")


def test_no_key_is_unavailable():
    with pytest.raises(LLMUnavailable, match="no Anthropic API key"):
        Claude(Settings(anthropic_api_key=None))


def test_the_modules_that_may_call_claude_load_the_sdk_only_when_it_is_used():
    """Every swarm and SPR flow-run process imports these; without a key they fall back, so the
    SDK (~2 s of CPU to import) must not be loaded for them. Counted in a fresh interpreter."""
    probe = (
        "import json, sys, tasks.swarm.priority, tasks.spr.llm\n"
        "top = {m.split('.')[0] for m in sys.modules}\n"
        "print(json.dumps(sorted(top & {'anthropic', 'httpx2'})))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    assert json.loads(done.stdout) == []
