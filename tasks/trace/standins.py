"""Loopback stand-ins for the systems a trace workflow calls: one small Starlette app served by
uvicorn on 127.0.0.1, used by the demo, the tests and the bench.

Every system shape is served at the root and under any instance prefix, so one server can play
many systems with different behaviour: `http://127.0.0.1:<port>/<instance>` is a system's base
URL, and `<base>/api/reactor/execute` (phoenix), `<base>/webhook/reactor-integration` (n8n),
`<base>/api/coordination/execute` (xavos), `<base>/api/execute` (generic), `<base>/health` and
`<base>/healthz` (n8n's health path) answer for that instance. Each instance has a `Behaviour`
(latency, failure rate, fail-first-N, unhealthy, what a success answers). `GET /_received` lists
the trace headers every request carried; `PUT /_config` replaces the behaviour; `POST
/_broadcast` is a dashboard sink for `REACTOR_BROADCAST_URL` that records the events it gets.
When the app runs in a process with telemetry configured it opens a SERVER span per call under
the incoming traceparent, as a real instrumented system would.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any, Literal

import httpx
import uvicorn
from opentelemetry.trace import SpanKind
from pydantic import BaseModel, Field
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from tasks.errors import ServiceUnhealthy
from tasks.ids import next_ns
from tasks.telemetry import get_tracer
from tasks.trace.spans import KIND_ATTR
from tasks.tracing import extract_context

DEFAULT_PORT = 8790
TRACE_HEADERS = ("traceparent", "tracestate", "baggage", "x-correlation-id")


class Behaviour(BaseModel):
    """How one stand-in instance answers."""

    latency_ms: float = Field(default=0.0, ge=0)
    failure_rate: float = Field(default=0.0, ge=0, le=1)
    fail_first: int = Field(default=0, ge=0, description="fail the first N calls")
    failure_status: int = Field(default=503, ge=400, le=599)
    retry_after_s: float | None = Field(default=None, ge=0, description="Retry-After on failure")
    healthy: bool = True
    # what a success answers: the type's own shape (with its execution id), or what other
    # real systems answer: a bare JSON object, a JSON array, plain text
    answer: Literal["shaped", "bare", "array", "text"] = "shaped"


class StandinConfig(BaseModel):
    default: Behaviour = Field(default_factory=Behaviour)
    instances: dict[str, Behaviour] = Field(default_factory=dict)
    seed: int = 0


class ReceivedRequest(BaseModel):
    instance: str
    shape: str
    method: str
    path: str
    traceparent: str | None
    tracestate: str | None
    baggage: str | None
    correlation_id: str | None
    traceparent_count: int
    upstream: list[str]
    received_at: float
    status_code: int


class StandinState:
    """Behaviour, per-instance call counters and the record of received requests."""

    def __init__(self, config: StandinConfig) -> None:
        self.lock = threading.Lock()
        self.configure(config)

    def configure(self, config: StandinConfig) -> None:
        with self.lock:
            self.config = config
            self.calls: dict[str, int] = {}
            self.rng = random.Random(config.seed)
            self.received: list[ReceivedRequest] = []
            self.broadcasts: list[dict[str, Any]] = []

    def behaviour(self, instance: str) -> Behaviour:
        return self.config.instances.get(instance, self.config.default)

    def next_call_fails(self, instance: str) -> bool:
        behaviour = self.behaviour(instance)
        with self.lock:
            n = self.calls[instance] = self.calls.get(instance, 0) + 1
            return n <= behaviour.fail_first or self.rng.random() < behaviour.failure_rate

    def record(self, item: ReceivedRequest) -> None:
        with self.lock:
            self.received.append(item)

    def received_for(self, instance: str | None = None) -> list[ReceivedRequest]:
        with self.lock:
            return [r for r in self.received if instance is None or r.instance == instance]


def _shape_response(shape: str, instance: str, trace_id: str | None, body: dict[str, Any]):
    suffix = f"{next_ns():x}"  # strictly increasing: concurrent requests get distinct ids
    upstream = sorted((body.get("upstream") or {}).keys())
    if shape == "phoenix":
        return {
            "status": "ok",
            "execution_id": f"phx_{suffix}",
            "reactor": "TraceFlowReactor",
            "instance": instance,
            "trace_id": trace_id,
            "upstream": upstream,
        }
    if shape == "n8n":
        return {
            "executionId": f"n8n_{suffix}",
            "workflowId": "reactor-integration",
            "finished": True,
            "data": {"instance": instance, "trace_id": trace_id, "upstream": upstream},
        }
    if shape == "xavos":
        return {
            "coordination_id": f"xav_{suffix}",
            "status": "coordinated",
            "ash_resource": "Reactor.Coordination",
            "instance": instance,
            "trace_id": trace_id,
            "upstream": upstream,
        }
    return {"execution_id": f"gen_{suffix}", "status": "ok", "instance": instance}


def _answer(behaviour: Behaviour, shape: str, instance: str, trace_id: str | None, body):
    if behaviour.answer == "bare":
        return {"ok": True}
    if behaviour.answer == "array":
        return [{"ok": True, "instance": instance}]
    if behaviour.answer == "text":
        return f"done by {instance}"
    return _shape_response(shape, instance, trace_id, body)


def create_app(state: StandinState) -> Starlette:
    """The stand-ins ASGI app over `state`."""
    tracer = get_tracer("reactor.standins")

    def instance_of(request: Request) -> str:
        return request.path_params.get("instance", "default")

    async def health(request: Request) -> JSONResponse:
        instance = instance_of(request)
        if not state.behaviour(instance).healthy:
            return JSONResponse({"status": "unhealthy", "instance": instance}, status_code=503)
        return JSONResponse({"status": "ok", "instance": instance})

    def endpoint(shape: str):
        async def execute(request: Request) -> Response:
            instance = instance_of(request)
            behaviour = state.behaviour(instance)
            ctx = extract_context(request.headers)
            try:
                body = await request.json()
            except ValueError:
                body = {}
            body = body if isinstance(body, dict) else {}
            with tracer.start_as_current_span(
                f"standin {instance} {shape}",
                context=ctx,
                kind=SpanKind.SERVER,
                attributes={KIND_ATTR: "server", "reactor.standin.instance": instance},
            ) as span:
                if behaviour.latency_ms:
                    await asyncio.sleep(behaviour.latency_ms / 1000)
                fails = state.next_call_fails(instance)
                traceparent = request.headers.get("traceparent")
                trace_id = traceparent.split("-")[1] if traceparent else None
                if fails:
                    status, payload = behaviour.failure_status, {"error": "injected failure"}
                else:
                    status = 200
                    payload = _answer(behaviour, shape, instance, trace_id, body)
                span.set_attribute("http.response.status_code", status)
            state.record(
                ReceivedRequest(
                    instance=instance,
                    shape=shape,
                    method=request.method,
                    path=request.url.path,
                    traceparent=traceparent,
                    tracestate=request.headers.get("tracestate"),
                    baggage=request.headers.get("baggage"),
                    correlation_id=request.headers.get("x-correlation-id"),
                    traceparent_count=len(request.headers.getlist("traceparent")),
                    upstream=sorted((body.get("upstream") or {}).keys()),
                    received_at=time.time(),
                    status_code=status,
                )
            )
            headers = {}
            if fails and behaviour.retry_after_s is not None:
                headers["Retry-After"] = f"{behaviour.retry_after_s:g}"
            if isinstance(payload, str):
                return PlainTextResponse(payload, status_code=status, headers=headers)
            return JSONResponse(payload, status_code=status, headers=headers)

        return execute

    async def broadcast(request: Request) -> JSONResponse:
        """A dashboard sink (what a Phoenix PubSub endpoint would be): records each event."""
        event = await request.json()
        with state.lock:
            state.broadcasts.append(
                {"event": event, "traceparent": request.headers.get("traceparent")}
            )
        return JSONResponse({"ok": True})

    async def received(request: Request) -> JSONResponse:
        instance = request.query_params.get("instance")
        return JSONResponse([r.model_dump() for r in state.received_for(instance)])

    async def configure(request: Request) -> JSONResponse:
        try:
            state.configure(StandinConfig.model_validate(await request.json()))
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=422)
        return JSONResponse(state.config.model_dump())

    shapes = {
        "phoenix": "/api/reactor/execute",
        "n8n": "/webhook/reactor-integration",
        "xavos": "/api/coordination/execute",
        "generic": "/api/execute",
    }
    routes = [
        Route("/_received", received, methods=["GET"]),
        Route("/_config", configure, methods=["PUT"]),
        Route("/_broadcast", broadcast, methods=["POST"]),
        Route("/health", health, methods=["GET"]),
        Route("/healthz", health, methods=["GET"]),
        Route("/{instance}/health", health, methods=["GET"]),
        Route("/{instance}/healthz", health, methods=["GET"]),
    ]
    for shape, path in shapes.items():
        routes.append(Route(path, endpoint(shape), methods=["POST"]))
        routes.append(Route("/{instance}" + path, endpoint(shape), methods=["POST"]))
    return Starlette(routes=routes)


class Standins:
    """Running stand-ins: `url(instance)` is a system's base URL."""

    def __init__(self, server: uvicorn.Server, state: StandinState, port: int) -> None:
        self.server, self.state, self.port = server, state, port
        self.base_url = f"http://127.0.0.1:{port}"

    def url(self, instance: str) -> str:
        return f"{self.base_url}/{instance}"

    def configure(self, config: StandinConfig) -> None:
        self.state.configure(config)

    def received(self, instance: str | None = None) -> list[ReceivedRequest]:
        return self.state.received_for(instance)

    def broadcasts(self) -> list[dict[str, Any]]:
        with self.state.lock:
            return list(self.state.broadcasts)


@contextlib.contextmanager
def run_standins(
    config: StandinConfig | None = None, port: int = 0, startup_timeout_s: float = 10.0
) -> Iterator[Standins]:
    """Serve the stand-ins on 127.0.0.1:`port` (0: a free port) in a background thread; stop
    them on exit."""
    state = StandinState(config or StandinConfig())
    uv_config = uvicorn.Config(
        create_app(state),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="off",
        access_log=False,
    )
    server = uvicorn.Server(uv_config)
    thread = threading.Thread(target=server.run, name="trace-standins", daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            thread.join(timeout=5)
            raise ServiceUnhealthy(
                f"trace stand-ins did not start on 127.0.0.1:{port} (port in use?); "
                "pick another with --port, or 0 for any free port"
            )
        time.sleep(0.01)
    bound = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield Standins(server, state, bound)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


class StandinsProcess:
    """Stand-ins running in a child process (own GIL, like real systems); same interface."""

    def __init__(self, process: subprocess.Popen[str], base_url: str) -> None:
        self.process, self.base_url = process, base_url
        self.port = int(base_url.rsplit(":", 1)[1])
        self._client = httpx.Client(base_url=base_url, trust_env=False, timeout=10)

    def url(self, instance: str) -> str:
        return f"{self.base_url}/{instance}"

    def configure(self, config: StandinConfig) -> None:
        self._client.put("/_config", json=config.model_dump()).raise_for_status()

    def received(self, instance: str | None = None) -> list[ReceivedRequest]:
        params = {"instance": instance} if instance else {}
        response = self._client.get("/_received", params=params)
        return [ReceivedRequest.model_validate(r) for r in response.raise_for_status().json()]


@contextlib.contextmanager
def run_standins_process(
    config: StandinConfig | None = None, port: int = 0, startup_timeout_s: float = 20.0
) -> Iterator[StandinsProcess]:
    """Serve the stand-ins from a child process on 127.0.0.1:`port`; it exits when this block
    ends (or when this process dies: the child stops when its stdin closes)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tasks.trace.standins", str(port)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdin is not None and process.stdout is not None
    try:
        process.stdin.write((config or StandinConfig()).model_dump_json() + "\n")
        process.stdin.flush()
        timer = threading.Timer(startup_timeout_s, process.kill)
        timer.start()
        line = process.stdout.readline().strip()
        timer.cancel()
        if not line.startswith("http://"):
            raise ServiceUnhealthy(f"trace stand-ins process did not start on port {port}")
        running = StandinsProcess(process, line)
        yield running
        running._client.close()
    finally:
        process.stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _serve_from_stdin(port: int) -> None:
    """Child-process entry: config JSON on the first stdin line, base URL on stdout, serve
    until stdin closes."""
    config = StandinConfig.model_validate_json(sys.stdin.readline())
    with run_standins(config, port=port) as running:
        print(running.base_url, flush=True)
        sys.stdin.read()  # returns at EOF: the parent ended the block or died


if __name__ == "__main__":
    _serve_from_stdin(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
