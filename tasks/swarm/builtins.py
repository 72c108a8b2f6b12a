"""The built-in handlers for the demo: real work sized by the task's estimated duration
(statistics over a signal, a knapsack solved by dynamic programming, a hash chain, and a
validation of the dependency results). Pure: no Prefect.

A built-in that computes on an instance it generated itself, because the payload carried no
data, labels its result `synthetic_input: true`; with the payload's data it says `false`.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from tasks.errors import InvalidInput

Handler = Callable[[dict[str, Any]], Any]

# Work per estimated millisecond for the built-ins, chosen so a 1 s estimate takes roughly
# 0.1-0.3 s on this machine: the demo is real work, but a test suite's worth of it.
_SCALE = 0.2


def _size(call: dict[str, Any], per_ms: float, low: int, high: int) -> int:
    ms = float(call.get("estimated_duration_ms", 500))
    return int(max(low, min(high, call["payload"].get("size", ms * _SCALE * per_ms))))


def analysis(call: dict[str, Any]) -> dict[str, Any]:
    """Descriptive statistics and a linear trend over `payload.values`, or over a deterministic
    signal derived from the task id when none are given (`synthetic_input: true` says so).

    Computed on the values scaled by their largest magnitude, so values near the float limit
    (1e308) do not overflow on the way; a statistic that still does not fit a float is null
    and named in `non_finite` (a result is JSON, and NaN/Infinity are not)."""
    values = call["payload"].get("values")
    if values is None:
        n = _size(call, 700.0, 10_000, 5_000_000)
        salt = int(hashlib.sha256(call["task_id"].encode()).hexdigest()[:8], 16)
        x = np.arange(n, dtype=np.float64)
        data = np.sin(x * (1 + salt % 97) / 1000.0) * 100 + x * 1e-4 + (salt % 13)
    else:
        data = np.asarray(values, dtype=np.float64)
        if data.size == 0:
            raise InvalidInput(f"task {call['task_id']}: payload.values is empty")
        if not np.isfinite(data).all():
            raise InvalidInput(f"task {call['task_id']}: payload.values must be finite numbers")
        x = np.arange(data.size, dtype=np.float64)
    scale = float(np.abs(data).max()) or 1.0
    unit = data / scale
    slope, intercept = np.polyfit(x, unit, 1) if data.size > 1 else (0.0, float(unit[0]))
    p = np.percentile(unit, [5, 50, 95])
    with np.errstate(over="ignore"):
        stats = {
            "mean": float(unit.mean()) * scale,
            "std": float(unit.std()) * scale,
            "p5": float(p[0]) * scale,
            "median": float(p[1]) * scale,
            "p95": float(p[2]) * scale,
            "trend_per_sample": float(slope) * scale,
            "intercept": float(intercept) * scale,
        }
    non_finite = sorted(k for k, v in stats.items() if not math.isfinite(v))
    rounded = {
        k: None if k in non_finite else v if k == "trend_per_sample" else round(v, 6)
        for k, v in stats.items()
    }
    return {
        "synthetic_input": values is None,
        "count": int(data.size),
        **rounded,
        **({"non_finite": non_finite} if non_finite else {}),
    }


def optimization(call: dict[str, Any]) -> dict[str, Any]:
    """0/1 knapsack by dynamic programming over `payload.items` [{weight, value}] and
    `payload.capacity`, or a deterministic instance sized by the task's duration
    (`synthetic_input: true` says so)."""
    payload = call["payload"]
    synthetic = "items" not in payload
    if not synthetic:
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
        "synthetic_input": synthetic,
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
