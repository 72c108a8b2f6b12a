"""How a task's handler runs: resolved, isolated, timed out and retried (pure: no Prefect).

A handler receives one `call` dict — {task_id, type, priority, payload, inputs (the results of
the task's dependencies), estimated_duration_ms, run_id, attempt} — and returns a JSON-able
result. Three kinds:

- built-ins (`tasks/swarm/builtins.py`) and `python` handlers (`module:function`, called as
  `fn(call)`) run in a worker process of a small pool (pebble's `ProcessPool`, its workers
  forked from a fork server that preloaded the worker module; started once per process, by the
  flow before its first task, and reused). An attempt that outlives its timeout is killed with
  its process, so it can neither finish its side effect later nor overlap with its retry.
  Reusing warm workers costs ~0.6 ms per call, where a fresh process per attempt costs an
  interpreter and its imports (`bench/handler_bench.py` measures both, and the first task's
  overhead with and without workers started beforehand). A worker keeps none of its caller's
  descriptors (its output goes to `handler-workers.log` in the coordination dir) and exits with
  the process that owns the pool.
- `http`: a POST of `call` as JSON with the W3C trace headers of the current span; the whole
  exchange runs under one deadline and is cancelled there (httpx's own timeouts apply per read,
  so a server that trickles bytes could outlast them). A 2xx JSON answer is the result.
- scenario types (`spr.batch`, `trace.check`, `worktree.health`, `tasks/swarm/scenarios.py`)
  run the other scenarios' flows as subflows, in the calling thread of the flow-run process
  (a subflow must be a child run of the swarm run), cancelled at the timeout by Prefect.
- In a daemonic process (a Dask worker), which may not start children, the first two run in a
  thread instead; such a thread cannot be killed, so a timed-out attempt is waited for before
  its retry starts: attempts of one task never overlap.

`run_with_retries` retries failed attempts with the project's backoff (`tasks.retry`), records
every attempt in the `handler_duration` metric and reports the true number of attempts; a task
is completed only when its handler returned. InvalidInput (a handler that cannot exist, input
it rejects) is not retried.
"""

from __future__ import annotations

import gc
import json
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import anyio
import httpx
from opentelemetry.trace import SpanKind, get_current_span
from pebble import ProcessExpired, ProcessPool
from pebble.common.types import RemoteTraceback

from tasks import metrics
from tasks.errors import InvalidInput, ServiceUnhealthy
from tasks.net import tls_context
from tasks.retry import with_backoff
from tasks.settings import get_settings
from tasks.swarm.builtins import BUILTINS
from tasks.swarm.models import HandlerSpec
from tasks.swarm.scenarios import SCENARIOS, run_scenario
from tasks.swarm.worker import HandlerRef, import_handler, ready, start_worker, timed_call
from tasks.telemetry import get_tracer
from tasks.tracing import inject_headers

__all__ = [
    "HandlerOutcome",
    "HandlerRef",
    "import_handler",
    "resolve",
    "run_with_retries",
    "start_workers",
]

Isolation = Literal["process", "thread"]
# on the caller's current span (the task's `swarm.execute`): the completed attempt's own time
HANDLER_MS_ATTRIBUTE = "swarm.handler_ms"


@dataclass
class HandlerOutcome:
    """The handler's result, or the error of its last attempt; `attempts` is how many ran."""

    attempts: int
    result: Any = None
    error: BaseException | None = None
    errors: list[str] = field(default_factory=list)  # one line per failed attempt
    # the completed attempt's own time, measured where the handler ran: without waiting for
    # a worker, its start-up or the import of its module, and without the transfer of the call
    handler_ms: float | None = None


def resolve(task_type: str, handlers: dict[str, HandlerSpec]) -> HandlerRef:
    """The handler for `task_type`: a registered one wins over a built-in of the same name. A
    `python` target is imported here too, so a wrong one fails before any attempt."""
    spec = handlers.get(task_type)
    if spec is None:
        if task_type in BUILTINS:
            return HandlerRef("builtin", task_type)
        if task_type in SCENARIOS:
            return HandlerRef("scenario", task_type)
        raise InvalidInput(
            f"no handler for task type {task_type!r}; built-ins are "
            f"{sorted([*BUILTINS, *SCENARIOS])}"
        )
    if spec.kind == "python":
        import_handler(spec.target)
        return HandlerRef("python", spec.target)
    return HandlerRef("http", spec.target)


def pool_targets(types: Iterable[str], handlers: dict[str, HandlerSpec]) -> tuple[str, ...] | None:
    """The `python` handler targets of `types` (imported in each worker as it warms up), or
    None when none of the types runs in the worker pool (HTTP and scenario handlers do not)."""
    refs = []
    for task_type in set(types):
        try:
            refs.append(resolve(task_type, handlers))
        except InvalidInput:  # reported by the task's own attempt
            continue
    pooled = [r for r in refs if r.kind in ("builtin", "python")]
    if not pooled:
        return None
    return tuple(sorted(r.target for r in pooled if r.kind == "python"))


# -- isolation --------------------------------------------------------------------------------

_pools: dict[int, ProcessPool] = {}
_pools_lock = threading.Lock()
_started_tracker = False  # did our first pool start multiprocessing's resource tracker?
_started_server = False  # ... and the fork server?
WORKER_MODULE = "tasks.swarm.worker"
WORKER_LOG = "handler-workers.log"  # in the coordination dir: what handlers print
STARTUP_TIMEOUT_S = 300.0


def _tracker() -> Any:
    # multiprocessing starts one "resource tracker" helper process for the semaphores of
    # spawned children and keeps it until the parent exits; there is no public way to ask
    # whether it runs or to stop it, so this reads its `_fd` and calls `_stop()` (CPython 3.11;
    # a multiprocessing child inherits its parent's: `_fd` set, `_pid` unknown, not ours to stop)
    from multiprocessing import resource_tracker

    return resource_tracker._resource_tracker


def _server() -> Any:
    # the same for the fork server (`_forkserver_pid`, `_stop()`, CPython 3.11)
    from multiprocessing import forkserver

    return forkserver._forkserver


def _context() -> Any:
    """Workers fork from a server process that imported the worker module (and so the
    built-ins, numpy) once: a worker, a replaced one too, starts in milliseconds instead of a
    fresh interpreter's seconds."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([WORKER_MODULE])
    return context


def worker_pool(workers: int) -> ProcessPool:
    """This process's pool of `workers` handler processes, created on first use (its workers
    start with the pool's first call, or with `start_workers`)."""
    global _started_tracker, _started_server
    with _pools_lock:
        pool = _pools.get(workers)
        if pool is None or not pool.active:
            _started_tracker = _started_tracker or (not _pools and _tracker()._fd is None)
            _started_server = _started_server or _server()._forkserver_pid is None
            log = get_settings().coordination_dir.resolve()
            log.mkdir(parents=True, exist_ok=True)
            pool = ProcessPool(
                max_workers=workers,
                context=_context(),
                initializer=start_worker,
                initargs=(os.getpid(), str(log / WORKER_LOG)),
            )
            _pools[workers] = pool
        return pool


def start_workers(workers: int, targets: tuple[str, ...] = ()) -> float:
    """Start this process's `workers` handler processes, if they are not running, and wait
    for `workers` warm-up calls (each imports the `python` handlers in `targets`; the pool
    hands them out, so a fast worker may take two): run before the first task, so a task's
    measured time leaves out the pool's start-up. The milliseconds it took (about 0 when the
    workers were already running)."""
    t0 = time.perf_counter()
    pool = worker_pool(workers)
    calls = [pool.schedule(ready, args=(targets,)) for _ in range(workers)]
    try:
        for call in calls:
            call.result(timeout=STARTUP_TIMEOUT_S)
    except (TimeoutError, ProcessExpired) as exc:
        raise ServiceUnhealthy(
            f"the {workers} handler worker process(es) did not start within "
            f"{STARTUP_TIMEOUT_S:g} s: {type(exc).__name__} {exc}"
        ) from None
    return (time.perf_counter() - t0) * 1000


def shutdown_pools() -> None:
    """Stop this process's handler workers (a short-lived caller, e.g. the demo, that must
    leave nothing running; a long-lived process keeps them warm until it exits), and the fork
    server and resource tracker when the pools were what started them."""
    global _started_tracker, _started_server
    with _pools_lock:
        pools = list(_pools.values())
        _pools.clear()
        while pools:
            stopping = pools.pop()
            stopping.stop()
            stopping.join()
            del stopping
        gc.collect()  # the pools' semaphores unregister from the tracker as they are freed
        if multiprocessing.active_children():  # somebody else's processes may need them
            return
        if _started_server:  # first: the server holds the tracker's pipe
            _server()._stop()
            _started_server = False
        if _started_tracker:
            _tracker()._stop()
            _started_tracker = False


def default_isolation() -> Isolation:
    return "thread" if multiprocessing.current_process().daemon else "process"


def _timed_out(call: dict[str, Any], timeout_s: float, how: str) -> TimeoutError:
    return TimeoutError(f"handler for {call['task_id']} timed out after {timeout_s:g} s ({how})")


def in_worker_process(
    ref: HandlerRef, call: dict[str, Any], timeout_s: float, workers: int
) -> tuple[Any, float]:
    future = worker_pool(workers).schedule(timed_call, args=(ref, call), timeout=timeout_s)
    try:
        return future.result()
    except TimeoutError as exc:
        if isinstance(exc.__cause__, RemoteTraceback):  # the handler's own TimeoutError
            raise
        raise _timed_out(call, timeout_s, "its process was killed") from None
    except ProcessExpired as exc:
        raise ServiceUnhealthy(
            f"handler process for {call['task_id']} died (exit code {exc.exitcode})"
        ) from None


class ThreadAttempts:
    """Attempts in a thread: a timed-out one is abandoned, and waited for before the next."""

    def __init__(self) -> None:
        self.straggler: threading.Thread | None = None

    def run(self, ref: HandlerRef, call: dict[str, Any], timeout_s: float) -> tuple[Any, float]:
        if self.straggler is not None:
            self.straggler.join()
        box: dict[str, Any] = {}

        def target() -> None:
            try:
                box["result"] = timed_call(ref, call)
            except BaseException as exc:  # handed to the caller's thread
                box["error"] = exc

        worker = threading.Thread(target=target, name=f"handler-{call['task_id']}", daemon=True)
        worker.start()
        worker.join(timeout_s)
        if worker.is_alive():
            self.straggler = worker
            raise _timed_out(call, timeout_s, "awaited before any retry")
        if "error" in box:
            raise box["error"]
        return box["result"]


async def _post(url: str, body: Any, headers: dict[str, str], timeout_s: float) -> httpx.Response:
    with anyio.fail_after(timeout_s):
        async with httpx.AsyncClient(timeout=timeout_s, verify=tls_context()) as client:
            return await client.post(url, json=body, headers=headers)


def post_call(url: str, call: dict[str, Any], timeout_s: float) -> Any:
    """POST `call` with trace headers, cancelled at `timeout_s`; the JSON answer."""
    # one client span per outgoing call, so each attempt carries its own parent-id
    with get_tracer().start_as_current_span(
        "swarm.http POST", kind=SpanKind.CLIENT, attributes={"http.url": url}
    ) as span:
        headers = dict(inject_headers({"content-type": "application/json"}))
        try:
            response = anyio.run(_post, url, call, headers, timeout_s)
        except (TimeoutError, httpx.TimeoutException):
            raise TimeoutError(
                f"POST {url} timed out after {timeout_s:g} s (request cancelled)"
            ) from None
        except httpx.HTTPError as exc:
            raise ServiceUnhealthy(f"POST {url} failed: {exc}") from exc
        span.set_attribute("http.status_code", response.status_code)
        if not response.is_success:
            raise ServiceUnhealthy(f"POST {url} answered HTTP {response.status_code}")
        try:
            return response.json()
        except ValueError as exc:
            raise ServiceUnhealthy(f"POST {url} answered non-JSON: {exc}") from exc


# -- retries ----------------------------------------------------------------------------------


class _Retryable(Exception):
    """Carries a failed attempt's error to `with_backoff` (InvalidInput is never wrapped)."""


def _outcome_label(exc: BaseException | None) -> str:
    if exc is None:
        return "completed"
    return "timeout" if isinstance(exc, TimeoutError) else "failed"


def run_with_retries(
    ref: HandlerRef,
    call: dict[str, Any],
    timeout_s: float,
    retries: int,
    *,
    workers: int = 4,
    isolation: Isolation | None = None,
    on_attempt: Callable[[int], None] | None = None,
    on_retry: Callable[[int, str, float], None] | None = None,
    backoff_base_s: float = 0.05,
) -> HandlerOutcome:
    """Up to `retries + 1` attempts, each under `timeout_s`; never raises for a handler error.
    `on_retry(attempt, error, delay_s)` is told before each retry."""
    isolation = isolation or default_isolation()
    threads = ThreadAttempts()
    outcome = HandlerOutcome(attempts=0)

    def attempt() -> Any:
        outcome.attempts += 1
        if on_attempt:
            on_attempt(outcome.attempts)
        this = {**call, "attempt": outcome.attempts}
        error: BaseException | None = None
        t0 = time.perf_counter()
        try:
            if ref.kind == "http":
                result = post_call(ref.target, this, timeout_s)
                own_ms = (time.perf_counter() - t0) * 1000
            elif ref.kind == "scenario":
                result = run_scenario(ref.target, this, timeout_s)
                own_ms = (time.perf_counter() - t0) * 1000
            elif isolation == "process":
                result, own_ms = in_worker_process(ref, this, timeout_s, workers)
            else:
                result, own_ms = threads.run(ref, this, timeout_s)
            json.dumps(result, default=str)  # results travel through the ledger and the log
            outcome.handler_ms = round(own_ms, 3)
            get_current_span().set_attribute(HANDLER_MS_ATTRIBUTE, outcome.handler_ms)
            return result
        except Exception as exc:
            error = exc
            outcome.errors.append(f"attempt {outcome.attempts}: {type(exc).__name__}: {exc}")
            if isinstance(exc, InvalidInput):
                raise
            raise _Retryable() from exc
        finally:
            metrics.handler_duration.record(
                time.perf_counter() - t0,
                {"work_type": call["type"], "outcome": _outcome_label(error)},
            )

    def pause(delay: float) -> None:
        if on_retry:
            on_retry(outcome.attempts, outcome.errors[-1], delay)
        time.sleep(delay)

    try:
        outcome.result = with_backoff(
            attempt, (_Retryable,), tries=retries + 1, base=backoff_base_s, cap=2.0, sleep=pause
        )
    except _Retryable as exc:
        outcome.error = exc.__cause__
    except InvalidInput as exc:
        outcome.error = exc
    return outcome
