"""The API requests a flow run makes, seen by a recording proxy in front of the test server: the
requests `unpersisted_results()` / `resumable()` and `prefect.toml`'s client settings remove
(docs/operations.md#what-it-costs) are gone, for every flow of the project."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from prefect import Flow, flow
from prefect.settings import PREFECT_API_URL, temporary_settings

from tasks.runtime import unpersisted_results

FLOWS_DIR = Path(__file__).resolve().parents[2] / "flows"
DEFAULT_STORAGE = "/api/admin/storage"
CSRF_TOKEN = "/api/csrf-token"
_HOP_BY_HOP = {"connection", "content-encoding", "content-length", "transfer-encoding"}


class _Forward(BaseHTTPRequestHandler):
    """Sends each request on to the real API and its answer back; keeps "METHOD path"."""

    def _forward(self) -> None:
        server = self.server
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        server.seen.append(f"{self.command} {urlsplit(self.path).path}")  # type: ignore[attr-defined]
        headers = {k: v for k, v in self.headers.items() if k.lower() not in {"host", *_HOP_BY_HOP}}
        answer = server.upstream.request(self.command, self.path, content=body, headers=headers)  # type: ignore[attr-defined]
        self.send_response(answer.status_code)
        for key, value in answer.headers.items():
            if key.lower() not in _HOP_BY_HOP:
                self.send_header(key, value)
        self.send_header("content-length", str(len(answer.content)))
        self.end_headers()
        self.wfile.write(answer.content)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _forward

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def recording_api() -> Iterator[list[str]]:
    """The test server's API behind a loopback proxy, set as `PREFECT_API_URL` while in use;
    yields the list of "METHOD path" it forwarded."""
    target = urlsplit(PREFECT_API_URL.value())
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Forward)
    server.seen = []  # type: ignore[attr-defined]
    server.upstream = httpx.Client(base_url=f"{target.scheme}://{target.netloc}", timeout=30)  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        proxy = f"http://127.0.0.1:{server.server_address[1]}{target.path}"
        with temporary_settings(updates={PREFECT_API_URL: proxy}):
            yield server.seen  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()
        server.upstream.close()  # type: ignore[attr-defined]


@flow
async def prefect_defaults() -> int:
    return 1


@flow(**unpersisted_results())
async def stated_results() -> int:
    return 1


def _requests_of(flow_fn: Flow) -> list[str]:
    with recording_api() as seen:
        assert asyncio.run(flow_fn()) == 1
    return list(seen)


def test_a_flow_with_stated_results_asks_the_server_nothing_about_result_storage(reactor_env):
    # Prefect's defaults ask twice per run (what the options are for: if this fails, the reason
    # for them is gone and docs/operations.md#what-it-costs should say so)
    assert _requests_of(prefect_defaults).count(f"GET {DEFAULT_STORAGE}") == 2
    seen = _requests_of(stated_results)
    assert f"GET {DEFAULT_STORAGE}" not in seen
    assert any(r.endswith("/set_state") for r in seen), seen  # the run did go through the proxy


def test_a_flow_run_asks_for_no_csrf_token(reactor_env):
    seen = _requests_of(stated_results)
    assert not [r for r in seen if r.startswith(f"GET {CSRF_TOKEN}")], seen
    assert any(r.startswith("POST /api/flow_runs/") for r in seen), seen


def _project_flows() -> list[Flow]:
    modules = [importlib.import_module(f"flows.{p.stem}") for p in sorted(FLOWS_DIR.glob("*.py"))]
    return [obj for m in modules for obj in vars(m).values() if isinstance(obj, Flow)]


@pytest.mark.parametrize("project_flow", _project_flows(), ids=lambda f: f.name)
def test_every_flow_states_its_result_persistence_and_storage(project_flow):
    assert project_flow.persist_result is not None, "add **unpersisted_results() or resumable()"
    assert project_flow.result_storage is not None, "add **unpersisted_results() or resumable()"
