"""Task handlers: how a task of a given type is actually done (pure: no Prefect).

A handler receives one `call` dict — {task_id, type, priority, payload, inputs (the results of
the task's dependencies), attempt} — and returns a JSON-able result. Three kinds:

- `python`: a callable named `module:function`, called as `fn(call)`;
- `http`: a POST of `call` as JSON to a URL, with W3C trace headers of the current span;
  a 2xx JSON answer is the result;
- built-ins for the demo, which do real work sized by the task's estimated duration
  (statistics over a signal, a knapsack solved by dynamic programming, a hash chain, and a
  validation of the dependency results).

`run_with_retries` enforces a per-attempt timeout and retries with backoff; a task is
completed only when its handler returned.
"""

from __future__ import annotations

import contextvars
import hashlib
import importlib
import json
import math
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import numpy as np
from opentelemetry.trace import SpanKind

from tasks.errors import InvalidInput, ServiceUnhealthy
from tasks.retry import backoff_delays
from tasks.swarm.models import HandlerSpec
from tasks.telemetry import get_tracer
from tasks.tracing import inject_headers

Handler = Callable[[dict[str, Any]], Any]

# Work per estimated millisecond for the built-ins, chosen so a 1 s estimate takes roughly
# 0.1-0.3 s on this machine: the demo is real work, but a test suite's worth of it.
_SCALE = 0.2


def _size(call: dict[str, Any], per_ms: float, low: int, high: int) -> int:
    ms = float(call.get("estimated_duration_ms", 500))
    return int(max(low, min(high, call["payload"].get("size", ms * _SCALE * per_ms))))


def analysis(call: dict[str, Any]) -> dict[str, Any]:
    """Descriptive statistics and a linear trend over `payload.values`, or over a deterministic
    signal derived from the task id when none are given."""
    values = call["payload"].get("values")
    if values is None:
        n = _size(call, 700.0, 10_000, 5_000_000)
        seed = int(hashlib.sha256(call["task_id"].encode()).hexdigest()[:8], 16)
        x = np.arange(n, dtype=np.float64)
        data = np.sin(x * (1 + seed % 97) / 1000.0) * 100 + x * 1e-4 + (seed % 13)
    else:
        data = np.asarray(values, dtype=np.float64)
        if data.size == 0:
            raise InvalidInput(f"task {call['task_id']}: payload.values is empty")
        x = np.arange(data.size, dtype=np.float64)
    slope, intercept = np.polyfit(x, data, 1) if data.size > 1 else (0.0, float(data[0]))
    p = np.percentile(data, [5, 50, 95])
    return {
        "count": int(data.size),
        "mean": round(float(data.mean()), 6),
        "std": round(float(data.std()), 6),
        "p5": round(float(p[0]), 6),
        "median": round(float(p[1]), 6),
        "p95": round(float(p[2]), 6),
        "trend_per_sample": float(slope),
        "intercept": round(float(intercept), 6),
    }


def optimization(call: dict[str, Any]) -> dict[str, Any]:
    """0/1 knapsack by dynamic programming over `payload.items` [{weight, value}] and
    `payload.capacity`, or a deterministic instance sized by the task's duration."""
    payload = call["payload"]
    if "items" in payload:
        items = [(int(i["weight"]), float(i["value"])) for i in payload["items"]]
        capacity = int(payload.get("capacity", sum(w for w, _ in items) // 2))
    else:
        n = _size(call, 4.5, 20, 2_000)
        items = [(5 + (i * 37) % 91, float(10 + (i * 53) % 97)) for i in range(n)]
        capacity = sum(w for w, _ in items) // 3
    if capacity < 0 or any(w <= 0 for w, _ in items):
        raise InvalidInput(f"task {call['task_id']}: weights must be > 0 and capacity >= 0")
    best = np.zeros(capacity + 1)
    keep = np.zeros((len(items), capacity + 1), dtype=bool)
    for k, (w, v) in enumerate(items):
        if w <= capacity:
            candidate = best[:-w] + v if w else best + v
            better = candidate > best[w:]
            keep[k, w:] = better
            best[w:] = np.where(better, candidate, best[w:])
    chosen, c = [], capacity
    for k in range(len(items) - 1, -1, -1):
        if keep[k, c]:
            chosen.append(k)
            c -= items[k][0]
    return {
        "items": len(items),
        "capacity": capacity,
        "best_value": float(best[capacity]),
        "chosen": len(chosen),
        "weight_used": capacity - c,
    }


def coordination(call: dict[str, Any]) -> dict[str, Any]:
    """A SHA-256 chain over the payload and every dependency's result (a consensus digest the
    dependents can verify)."""
    rounds = _size(call, 750.0, 1_000, 4_000_000)
    blob = json.dumps({"payload": call["payload"], "inputs": call["inputs"]}, sort_keys=True)
    digest = hashlib.sha256(blob.encode()).digest()
    for _ in range(rounds):
        digest = hashlib.sha256(digest).digest()
    return {"rounds": rounds, "digest": digest.hex(), "inputs": sorted(call["inputs"])}


def validation(call: dict[str, Any]) -> dict[str, Any]:
    """Checks every dependency result: present, JSON-serialisable, finite numbers; recomputes
    a coordination digest when one is there. Fails (raises) when a check fails."""
    checks, failures = 0, []
    for dep, result in sorted(call["inputs"].items()):
        checks += 1
        if result is None:
            failures.append(f"{dep}: no result")
            continue
        for key, value in result.items() if isinstance(result, dict) else []:
            checks += 1
            if isinstance(value, float) and not math.isfinite(value):
                failures.append(f"{dep}.{key} is not finite")
        if isinstance(result, dict) and "digest" in result and "rounds" in result:
            checks += 1
            if len(result["digest"]) != 64:
                failures.append(f"{dep}: digest malformed")
    # plus an integrity pass over the whole input, sized by the task's duration
    blob = json.dumps(call["inputs"], sort_keys=True, default=str).encode()
    digest = hashlib.sha256(blob).digest()
    for _ in range(_size(call, 600.0, 1_000, 4_000_000)):
        digest = hashlib.sha256(digest).digest()
    if failures:
        raise ValueError(f"validation of {call['task_id']} failed: {'; '.join(failures)}")
    return {"checks": checks, "inputs_validated": len(call["inputs"]), "digest": digest.hex()}


BUILTINS: dict[str, Handler] = {
    "analysis": analysis,
    "optimization": optimization,
    "coordination": coordination,
    "validation": validation,
}


def import_handler(target: str) -> Handler:
    """`module:function` -> the callable, with a clear error naming what is missing."""
    module_name, _, attr = target.partition(":")
    if not module_name or not attr:
        raise InvalidInput(f"handler {target!r} must look like 'package.module:function'")
    try:
        fn = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise InvalidInput(f"handler {target!r} cannot be imported: {exc}") from exc
    if not callable(fn):
        raise InvalidInput(f"handler {target!r} is not callable")
    return fn


def http_handler(url: str, timeout_s: float) -> Handler:
    def post(call: dict[str, Any]) -> Any:
        # one client span per outgoing call, so each attempt carries its own parent-id
        with get_tracer().start_as_current_span(
            "swarm.http POST", kind=SpanKind.CLIENT, attributes={"http.url": url}
        ) as span:
            headers = dict(inject_headers({"content-type": "application/json"}))
            try:
                response = httpx.post(url, json=call, headers=headers, timeout=timeout_s)
            except httpx.TimeoutException as exc:
                raise TimeoutError(f"POST {url} timed out after {timeout_s:g} s") from exc
            except httpx.HTTPError as exc:
                raise ServiceUnhealthy(f"POST {url} failed: {exc}") from exc
            span.set_attribute("http.status_code", response.status_code)
            if not response.is_success:
                raise ServiceUnhealthy(f"POST {url} answered HTTP {response.status_code}")
            try:
                return response.json()
            except ValueError as exc:
                raise ServiceUnhealthy(f"POST {url} answered non-JSON: {exc}") from exc

    return post


def resolve(task_type: str, handlers: dict[str, HandlerSpec], timeout_s: float) -> Handler:
    """The handler for `task_type`: a registered one wins over a built-in of the same name."""
    spec = handlers.get(task_type)
    if spec is None:
        if task_type in BUILTINS:
            return BUILTINS[task_type]
        raise InvalidInput(
            f"no handler for task type {task_type!r}; built-ins are {sorted(BUILTINS)}"
        )
    if spec.kind == "python":
        return import_handler(spec.target)
    return http_handler(spec.target, timeout_s)


def call_with_timeout(handler: Handler, call: dict[str, Any], timeout_s: float) -> Any:
    """Run `handler(call)` in a worker thread and wait at most `timeout_s`. A Python thread
    cannot be killed: a handler that overruns is abandoned (its result is ignored)."""
    box: dict[str, Any] = {}
    # a new thread starts with empty contextvars: run the handler in a copy of the caller's
    # context so its spans (and the trace headers an HTTP handler sends) stay in this trace
    context = contextvars.copy_context()

    def target() -> None:
        try:
            box["result"] = context.run(handler, call)
        except BaseException as exc:  # handed to the caller's thread
            box["error"] = exc

    worker = threading.Thread(target=target, name=f"handler-{call['task_id']}", daemon=True)
    worker.start()
    worker.join(timeout_s)
    if worker.is_alive():
        raise TimeoutError(f"handler for {call['task_id']} timed out after {timeout_s:g} s")
    if "error" in box:
        raise box["error"]
    return box["result"]


def run_with_retries(
    handler: Handler,
    call: dict[str, Any],
    timeout_s: float,
    retries: int,
    on_attempt: Callable[[int], None] | None = None,
    backoff_base_s: float = 0.05,
) -> tuple[Any, int, list[str]]:
    """(result, attempts, errors of failed attempts). Raises the last error when every attempt
    failed; InvalidInput (a handler that cannot exist) is not retried."""
    errors: list[str] = []
    delays = backoff_delays(retries + 1, base=backoff_base_s, cap=2.0)
    attempt = 0
    while True:
        attempt += 1
        if on_attempt:
            on_attempt(attempt)
        try:
            result = call_with_timeout(handler, {**call, "attempt": attempt}, timeout_s)
            json.dumps(result, default=str)  # results travel through the ledger and the log
            return result, attempt, errors
        except InvalidInput:
            raise
        except Exception as exc:
            errors.append(f"attempt {attempt}: {type(exc).__name__}: {exc}")
            delay = next(delays, None)
            if delay is None:
                raise
            time.sleep(delay)
