"""The Anthropic Messages API as SPR tests see it: the real `anthropic` SDK over an
`httpx2.MockTransport` (the only mock in the suite). `api(handler)` gives a Claude factory whose
every request goes to `handler(body, n)`; `answer(body)` is a well-formed reply to whichever
SPR tool the request asks for."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx2

from tasks.claude import Claude
from tasks.settings import Settings

STATEMENTS = [
    "Gateway retries HTTP 503 three times with 250 ms backoff",
    "Pool keeps 400 TCP connections per backend via pool.yaml",
    "Canary holds each release at 5% traffic for 15 minutes",
]
RECONSTRUCTION = "The gateway retries HTTP 503 three times with a 250 ms backoff."

Handler = Callable[[dict, int], httpx2.Response]


def message(tool: str, tool_input: object) -> dict:
    return {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5",
        "content": [{"type": "tool_use", "id": "toolu_1", "name": tool, "input": tool_input}],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {"input_tokens": 100, "output_tokens": 50},
    }


def tool_of(body: dict) -> str:
    return body["tool_choice"]["name"]


def answer(body: dict, n: int = 0) -> httpx2.Response:
    """A valid reply to the SPR tool the request forces (statements, or a reconstruction)."""
    if tool_of(body) == "write_spr":
        return httpx2.Response(200, json=message("write_spr", {"statements": STATEMENTS}))
    return httpx2.Response(200, json=message("write_reconstruction", {"text": RECONSTRUCTION}))


def status(code: int) -> httpx2.Response:
    """An API error with `retry-after: 0` (the SDK honours it, so tests do not wait)."""
    return httpx2.Response(code, headers={"retry-after": "0"}, json={"type": "error"})


def api(handler: Handler) -> tuple[Callable[[], Claude], list[dict]]:
    """(factory of Claude clients over the mock transport, the request bodies seen)."""
    calls: list[dict] = []

    def record(request: httpx2.Request) -> httpx2.Response:
        body = json.loads(request.content)
        calls.append(body)
        return handler(body, len(calls))

    client = httpx2.Client(transport=httpx2.MockTransport(record))
    return (lambda: Claude(Settings(), http_client=client)), calls
