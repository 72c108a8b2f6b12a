"""Services judged by the one health rule (2xx and, when the body is JSON with a status,
healthy|ok), and waiting for health until a deadline or the process exits."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tasks.worktree.health import check_health, wait_healthy

ANSWERS = {
    "/ok": (200, {"status": "ok"}),
    "/healthy": (200, {"status": "Healthy"}),
    "/plain": (200, None),
    "/starting": (200, {"status": "starting"}),
    "/down": (503, {"status": "ok"}),
    "/nostatus": (204, None),
}


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        code, body = ANSWERS[self.path]
        data = json.dumps(body).encode() if body is not None else b"fine"
        self.send_response(code)
        self.send_header("Content-Length", str(len(data) if code != 204 else 0))
        self.end_headers()
        if code != 204:
            self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def base():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    ("path", "healthy"),
    [
        ("/ok", True),
        ("/healthy", True),
        ("/plain", True),
        ("/nostatus", True),
        ("/starting", False),
        ("/down", False),
    ],
)
def test_health_rule(base, path, healthy):
    check = check_health(base + path)
    assert check.healthy is healthy, check.detail
    assert check.latency_ms > 0


def test_connection_refused_is_unhealthy_not_an_exception():
    check = check_health("http://127.0.0.1:1/health", timeout_s=0.5)
    assert not check.healthy and "ConnectError" in check.detail


def test_wait_healthy_gives_up_at_the_deadline(base):
    started = time.monotonic()
    check, checks = wait_healthy(base + "/starting", timeout_s=0.35, interval_s=0.1)
    assert not check.healthy and "not healthy after 0.35 s" in check.detail
    assert time.monotonic() - started >= 0.35
    assert checks >= 1  # every ~0.1 s; how many fit depends on the machine's load


def test_wait_healthy_stops_polling_when_the_process_exits(base):
    check, checks = wait_healthy(
        base + "/starting", timeout_s=30, interval_s=0.1, still_running=lambda: False
    )
    assert checks == 1 and "process exited before becoming healthy" in check.detail


def test_a_healthy_answer_after_the_process_exited_is_not_its_health(base):
    # the service could not bind its port (another process holds it) and exited; what
    # answers there is that other process
    check, checks = wait_healthy(base + "/ok", timeout_s=30, still_running=lambda: False)
    assert checks == 1 and not check.healthy
    assert "another process holds it" in check.detail


def test_an_answer_from_a_port_the_service_does_not_listen_on_is_not_its_health(base):
    # another process bound the port first; ours still runs (say, still starting up)
    check, checks = wait_healthy(base + "/ok", timeout_s=0.3, interval_s=0.1, listens=lambda: False)
    assert not check.healthy and checks >= 1
    assert "do not listen on it" in check.detail
