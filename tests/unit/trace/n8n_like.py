"""A loopback server that answers as a real n8n (2.x) does, for the workflow a user writes:
Webhook (POST /webhook/reactor-integration, "respond when the last node finishes") → HTTP
Request to a downstream URL. What n8n does and this server mimics:

- the webhook answers the last node's output (here the downstream's JSON answer, e.g.
  `{"ok": true}`), not an `executionId` — unless the workflow adds one (`reply_with_id`);
- it continues a version-00 `traceparent` (the downstream call carries our trace id with n8n's
  own parent-id) and starts a new trace for any other version;
- it drops a `tracestate` longer than 512 characters, and forwards neither `baggage` nor
  `X-Correlation-ID` unless the workflow sets them;
- `GET /healthz` answers `{"status":"ok"}`; every other GET (`/health` included) answers the
  editor's HTML page with 200.
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx

from tests.loopback import QuietHandler, reply, serving

WEBHOOK = "/webhook/reactor-integration"
EDITOR_PAGE = (
    "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>n8n.io - Workflow "
    "Automation</title></head><body><noscript>n8n needs JavaScript</noscript><div id='app'>"
    + "<!-- editor bundle -->" * 2300
    + "</div></body></html>"
)  # ~52 KB, as n8n's editor page
_V00 = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


@dataclass
class N8nLike:
    base_url: str
    webhook_headers: list[dict[str, str]] = field(default_factory=list)
    downstream_headers: list[dict[str, str]] = field(default_factory=list)
    reply_with_id: bool = False
    executions: int = 0


@contextlib.contextmanager
def run_n8n_like() -> Iterator[N8nLike]:
    """n8n on one loopback port, its workflow's downstream system on another."""
    state = N8nLike(base_url="")

    class Downstream(QuietHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length") or 0))
            state.downstream_headers.append({k.lower(): v for k, v in self.headers.items()})
            reply(self, b'{"ok": true}')

    class N8n(QuietHandler):
        def do_GET(self) -> None:
            if self.path == "/healthz":
                reply(self, b'{"status":"ok"}', 200, "application/json; charset=utf-8")
            else:
                reply(self, EDITOR_PAGE.encode(), 200, "text/html; charset=utf-8")

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            if self.path != WEBHOOK:
                reply(self, b'{"code":404,"message":"not registered"}', 404)
                return
            received = {k.lower(): v for k, v in self.headers.items()}
            state.webhook_headers.append(received)
            state.executions += 1
            output = httpx.post(
                downstream_url, content=body, headers=self._propagated(received), timeout=10
            ).json()
            if state.reply_with_id:  # a workflow whose last node adds {{ $execution.id }}
                output = {"executionId": str(state.executions), **output}
            reply(self, json.dumps(output).encode(), 200, "application/json; charset=utf-8")

        @staticmethod
        def _propagated(received: dict[str, str]) -> dict[str, str]:
            match = _V00.match(received.get("traceparent", ""))
            trace_id = match[1] if match else secrets.token_hex(16)
            flags = match[3] if match else "01"
            out = {"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-{flags}"}
            state_header = received.get("tracestate")
            if match and state_header and len(state_header) <= 512:
                out["tracestate"] = state_header
            out["content-type"] = "application/json"
            return out

    with serving(Downstream) as downstream, serving(N8n) as n8n:
        downstream_url = f"http://127.0.0.1:{downstream.server_address[1]}/ingest"
        state.base_url = f"http://127.0.0.1:{n8n.server_address[1]}"
        yield state
