"""Loopback helpers shared by tests: a free port, a small HTTP server in a thread (`serving`,
`QuietHandler`, `reply`), an echo server that answers each POST with the task id it was sent and
the `traceparent` header it received, and an OTLP/HTTP collector."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def free_port() -> int:
    """A port on 127.0.0.1 with nothing listening (for "the system is down" cases)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that logs nothing to stderr."""

    def log_message(self, *args: Any) -> None:
        pass


def reply(
    handler: BaseHTTPRequestHandler,
    body: bytes,
    status: int = 200,
    content_type: str = "application/json",
) -> None:
    """Answer the request `handler` is serving with `body`."""
    handler.send_response(status)
    handler.send_header("content-type", content_type)
    handler.send_header("content-length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


@contextlib.contextmanager
def serving(handler: type[BaseHTTPRequestHandler], port: int = 0) -> Iterator[ThreadingHTTPServer]:
    """`handler` served on 127.0.0.1:`port` (0: a free one) by a daemon thread until the block
    ends."""
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


class _Echo(QuietHandler):
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        answer = {"task_id": body["task_id"], "traceparent": self.headers.get("traceparent")}
        reply(self, json.dumps(answer).encode())


@contextlib.contextmanager
def echo_server(path: str = "/run") -> Iterator[str]:
    """Serve the echo handler on 127.0.0.1 in a thread; yields the URL of `path`."""
    with serving(_Echo) as server:
        yield f"http://127.0.0.1:{server.server_address[1]}{path}"


class _Collector(QuietHandler):
    """Keeps (path, body) of every POST on the server's `received` list; answers 200."""

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append((self.path, body))  # type: ignore[attr-defined]
        self.send_response(200)
        self.end_headers()


@contextlib.contextmanager
def otlp_collector() -> Iterator[tuple[str, list[tuple[str, bytes]]]]:
    """A loopback OTLP/HTTP collector in a thread: yields (its URL, the (path, body) of each
    request it received), for `OTEL_EXPORTER_OTLP_ENDPOINT`."""
    with serving(_Collector) as server:
        server.received = []  # type: ignore[attr-defined]
        yield f"http://127.0.0.1:{server.server_address[1]}", server.received  # type: ignore[attr-defined]
