"""The adapter service the W3C Trace Context test suite drives, built on `tasks.tracing`.

The suite (github.com/w3c/trace-context, `test/test.py`) POSTs a JSON list of
`{"url": ..., "arguments": ...}` carrying the trace headers under test. The service continues
the incoming context (`extract_context`) and, for each item, POSTs `arguments` to `url` from a
CLIENT span of its own (so each call gets a new parent-id) with the propagated headers
(`inject_headers`). Spans come from a private SDK tracer with no exporter: nothing is written.

Run it for the real suite (see docs/trace.md, "W3C conformance"):
    .venv/bin/python -m tests.w3c.service 5000
"""

from __future__ import annotations

import contextlib
import json
import sys
import threading
from collections.abc import Iterator
from typing import Any

import httpx
from opentelemetry import context as otel_context
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind

from tasks.tracing import extract_context, inject_headers
from tests.loopback import QuietHandler, reply, serving

TRACER = TracerProvider().get_tracer("w3c-adapter")


def forward(incoming: list[tuple[str, str]], actions: Any, client: httpx.Client) -> int:
    """POST each action's `arguments` to its `url` under the context `incoming` carries;
    returns how many calls were made."""
    actions = actions if isinstance(actions, list) else [actions]
    token = otel_context.attach(extract_context(incoming))
    try:
        for action in actions:
            with TRACER.start_as_current_span("w3c callback", kind=SpanKind.CLIENT):
                client.post(
                    action["url"], json=action.get("arguments") or [], headers=inject_headers()
                )
    finally:
        otel_context.detach(token)
    return len(actions)


class _Adapter(QuietHandler):
    client: httpx.Client

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        calls = forward(list(self.headers.items()), json.loads(body or b"[]"), self.client)
        reply(self, json.dumps({"calls": calls}).encode())


@contextlib.contextmanager
def serve_adapter(port: int = 0) -> Iterator[str]:
    """Serve the adapter on 127.0.0.1:`port` (0: a free one) in a thread; yields its URL."""
    client = httpx.Client(trust_env=False, timeout=10)
    handler = type("Adapter", (_Adapter,), {"client": client})
    with client, serving(handler, port) as server:
        yield f"http://127.0.0.1:{server.server_address[1]}/test"


if __name__ == "__main__":
    with serve_adapter(int(sys.argv[1]) if len(sys.argv) > 1 else 5000) as url:
        print(url, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
