"""A small real HTTP service for the worktree scenario (standard library only).

GET /health -> {"status": "ok", "name", "port", "pid", "started_at", "ready_at"}
Environment: PORT (required), HOST (default 127.0.0.1), WORKTREE_NAME, START_DELAY_S (seconds
to wait before listening, like a real app booting), READY_DELAY_S (seconds it answers 503
{"status": "starting"} once listening, like an app warming up), HEALTH_MODE=never (answer 503
forever: a service that never becomes healthy).
"""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STARTED_AT = datetime.now(UTC).isoformat()


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.split("?")[0] == "/health":
            never = os.environ.get("HEALTH_MODE") == "never"
            warming = time.monotonic() < self.server.warm_at  # type: ignore[attr-defined]
            starting = never or warming
            body = {
                "status": "starting" if starting else "ok",
                "name": os.environ.get("WORKTREE_NAME", "service"),
                "port": int(os.environ["PORT"]),
                "pid": os.getpid(),
                "started_at": STARTED_AT,
                "ready_at": self.server.ready_at,  # type: ignore[attr-defined]
            }
            self._send(503 if starting else 200, body)
        elif self.path == "/":
            self._send(200, {"hello": os.environ.get("WORKTREE_NAME", "service")})
        else:
            self._send(404, {"error": f"no route {self.path}"})

    def _send(self, code: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, fmt: str, *args) -> None:  # keep logs short: one line per request
        print(f"{self.address_string()} {fmt % args}", flush=True)


def main() -> None:
    time.sleep(float(os.environ.get("START_DELAY_S", "0")))
    server = ThreadingHTTPServer(
        (os.environ.get("HOST", "127.0.0.1"), int(os.environ["PORT"])), Handler
    )
    server.ready_at = datetime.now(UTC).isoformat()  # type: ignore[attr-defined]
    warm_s = float(os.environ.get("READY_DELAY_S", "0"))
    server.warm_at = time.monotonic() + warm_s  # type: ignore[attr-defined]
    print(f"listening on {server.server_address}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
