"""Alerts for real: the automations of deployments/automations.yaml are applied to the test server
with a webhook pointing at a loopback receiver, each condition is caused for real (a reactor flow
run that fails, a worktree alert event, a swarm run below its minimum success rate), and the
server's own automation services deliver the notification to the receiver."""

from __future__ import annotations

import asyncio
import inspect
import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from deployments.automations import (
    UNCONFIGURED,
    WEBHOOK_BLOCK,
    apply_automations,
    load_specs,
)
from deployments.serve import load_deployments, load_flow
from tasks.settings import Settings
from tests.loopback import free_port


class Receiver:
    """A loopback HTTP endpoint recording every JSON body POSTed to it."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []
        self.changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["content-length"]))
                with receiver.changed:
                    receiver.bodies.append(json.loads(body))
                    receiver.changed.notify_all()
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, timeout_s: float = 90, **fields: str) -> dict:
        deadline = time.monotonic() + timeout_s
        with self.changed:
            while True:
                for body in self.bodies:
                    if all(body.get(k) == v for k, v in fields.items()):
                        return body
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no notification with {fields}; got {self.bodies}")
                self.changed.wait(left)


async def _automations(names: list[str]) -> dict[str, list]:
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        return {n: await client.read_automations_by_name(n) for n in names}


async def _delete_all(names: list[str]) -> None:
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    async with get_client() as client:
        for name in names:
            for a in await client.read_automations_by_name(name):
                await client.delete_automation(a.id)
        try:
            block = await client.read_block_document_by_name(WEBHOOK_BLOCK, "webhook")
            await client.delete_block_document(block.id)
        except ObjectNotFound:
            pass


NAMES = [s["name"] for s in load_specs()]


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    """The automations applied with the webhook at a loopback receiver; removed afterwards, so
    later tests' failing flows notify nobody."""
    receiver = Receiver()
    settings = Settings(alert_webhook_url=receiver.url)
    applied = asyncio.run(apply_automations(settings))
    assert {a.action for a in applied} == {"call-webhook"}
    try:
        yield receiver
    finally:
        asyncio.run(_delete_all(NAMES))
        receiver.server.shutdown()


def _flush_events() -> None:
    from prefect.events.worker import EventsWorker

    EventsWorker.drain_all(timeout=10)


@pytest.mark.timeout(600)
def test_failed_run_of_a_reactor_flow_is_notified(receiver, reactor_env):
    from flows.trace_orchestration import trace_orchestration
    from tasks.trace.models import TraceRequest

    down = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    request = TraceRequest(
        workflow_id="alert-check",
        enable_fallback=False,
        systems=[{"name": "phoenix", "type": "phoenix", "url": down, "retries": 0,
                  "timeout_s": 0.5}],
    )  # fmt: skip
    state = trace_orchestration(request, return_state=True)
    if inspect.isawaitable(state):
        state = asyncio.run(state)
    assert state.is_failed()
    run_id = str(state.state_details.flow_run_id)
    body = receiver.wait_for(
        automation="reactor-flow-run-failed", resource=f"prefect.flow-run.{run_id}"
    )
    assert body["event"] == "prefect.flow-run.Failed"
    assert body["text"].startswith("Reactor flow run ") and "Failed" in body["text"]


def test_worktree_alert_event_is_notified(receiver):
    from tasks.events import emit

    service = f"api-{uuid.uuid4().hex[:6]}"
    emit("worktree", "alert.restart_failed", service, {"name": service, "detail": "exit 3"})
    _flush_events()
    body = receiver.wait_for(automation="reactor-worktree-alert", resource_name=service)
    assert body["event"] == "reactor.worktree.alert.restart_failed"
    assert body["text"] == f"Service {service}: restart_failed exit 3"


def test_swarm_run_below_min_success_rate_is_notified(receiver):
    from tasks.events import emit

    run_id = str(uuid.uuid4())
    emit(
        "swarm",
        "below_min_success_rate",
        run_id,
        {"success_rate": 0.5, "min_success_rate": 0.8},
    )
    _flush_events()
    body = receiver.wait_for(automation="reactor-swarm-below-min-success-rate")
    assert body["resource"] == f"reactor.swarm.{run_id}"
    assert "0.5 < 0.8" in body["text"]


def test_reapplying_updates_and_never_duplicates(receiver):
    before = asyncio.run(_automations(NAMES))
    assert all(len(before[n]) == 1 for n in NAMES)
    first = {n: before[n][0].id for n in NAMES}
    try:
        again = asyncio.run(apply_automations(Settings(alert_webhook_url=None)))
        assert {a.name: a.id for a in again} == first and not any(a.created for a in again)
        found = asyncio.run(_automations(NAMES))
        assert all(len(found[n]) == 1 for n in NAMES)
        unconfigured = found[NAMES[0]][0]
        assert unconfigured.description.endswith(UNCONFIGURED)
        assert [a.type for a in unconfigured.actions] == ["do-nothing"]
    finally:  # the other tests of this module keep their webhook
        asyncio.run(apply_automations(Settings(alert_webhook_url=receiver.url)))


def test_failed_run_automation_names_every_flow_in_prefect_yaml():
    spec = next(s for s in load_specs() if s["name"] == "reactor-flow-run-failed")
    names = spec["trigger"]["match_related"]["prefect.resource.name"]
    assert sorted(names) == sorted({load_flow(d["entrypoint"]).name for d in load_deployments()})
