"""The Claude compressor/decompressor through the real anthropic SDK, against an
httpx2.MockTransport standing in for the API (the only mock in the suite)."""

import httpx2 as httpx  # the anthropic SDK (2.x) is built on httpx2
import pytest

from tasks.spr.llm import compress_with, decompress_with
from tests.unit.spr.anthropic_api import api, message, status

TEXT = (
    "The gateway retries HTTP 503 responses three times with a 250 ms backoff. Connection "
    "pooling keeps 400 TCP connections per backend, configured in pool.yaml. The canary stage "
    "holds each release at 5% of traffic for 15 minutes before the rollout continues. "
) * 3

GOOD = {
    "statements": [
        "Gateway retries HTTP 503 three times, 250 ms backoff",
        "Pool keeps 400 TCP connections per backend via pool.yaml",
        "Canary holds release at 5% traffic for 15 minutes",
    ]
}


@pytest.fixture
def claude(monkeypatch):
    """`api` (tests/unit/spr/anthropic_api.py) with one SDK retry and a short timeout."""
    monkeypatch.setenv("REACTOR_ANTHROPIC_API_KEY", "sk-ant-test-0123456789")
    monkeypatch.setenv("REACTOR_LLM_MAX_RETRIES", "1")
    monkeypatch.setenv("REACTOR_LLM_TIMEOUT_S", "0.5")
    return api


def test_claude_compresses_when_configured_and_says_so(claude):
    factory, calls = claude(lambda body, n: httpx.Response(200, json=message("write_spr", GOOD)))
    result = compress_with(TEXT, "standard", 0.3, "claude", claude=factory)
    assert result.source == "claude" and result.fallback_reason is None
    assert result.model == "claude-sonnet-4-5"
    assert result.statements[0].startswith("Gateway retries HTTP 503")
    assert calls[0]["tool_choice"] == {"type": "tool", "name": "write_spr"}


def test_429_with_retry_after_is_retried_then_succeeds(claude):
    def handler(body, n):
        return status(429) if n == 1 else httpx.Response(200, json=message("write_spr", GOOD))

    factory, calls = claude(handler)
    result = compress_with(TEXT, "standard", 0.3, "auto", claude=factory)
    assert result.source == "claude"
    assert len(calls) == 2


def test_529_overload_falls_back_to_extractive_with_the_reason(claude):
    factory, calls = claude(lambda body, n: status(529))
    result = compress_with(TEXT, "standard", 0.3, "claude", claude=factory)
    assert result.source == "extractive" and result.model is None
    assert "HTTP 529" in result.fallback_reason
    assert len(calls) == 2  # first try + 1 SDK retry


def test_429_after_the_retries_falls_back_with_the_reason(claude):
    factory, calls = claude(lambda body, n: status(429))
    result = compress_with(TEXT, "standard", 0.3, "auto", claude=factory)
    assert result.source == "extractive"
    assert "HTTP 429" in result.fallback_reason
    assert len(calls) == 2


def test_timeout_falls_back(claude):
    def handler(body, n):
        raise httpx.ReadTimeout("slow")

    factory, _ = claude(handler)
    result = compress_with(TEXT, "standard", 0.3, "claude", claude=factory)
    assert result.source == "extractive"
    assert "timed out" in result.fallback_reason


def test_malformed_tool_output_falls_back(claude):
    bad = message("write_spr", {"statements": "not a list"})
    factory, _ = claude(lambda body, n: httpx.Response(200, json=bad))
    result = compress_with(TEXT, "standard", 0.3, "claude", claude=factory)
    assert result.source == "extractive"
    assert "failed validation" in result.fallback_reason


def test_no_key_means_extractive_with_the_reason(monkeypatch):
    monkeypatch.delenv("REACTOR_ANTHROPIC_API_KEY", raising=False)
    result = compress_with(TEXT, "standard", 0.3, "auto")
    assert result.source == "extractive"
    assert "no Anthropic API key" in result.fallback_reason


def test_claude_decompressor_reconstructs_prose(claude):
    reply = message("write_reconstruction", {"text": "The gateway retries 503s."})
    factory, _ = claude(lambda body, n: httpx.Response(200, json=reply))
    prose, decompressor, reason = decompress_with("Gateway retries 503", "claude", factory)
    assert (prose, decompressor, reason) == ("The gateway retries 503s.", "claude", None)
