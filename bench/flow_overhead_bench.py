"""The fixed cost of a flow run: an empty `def` flow vs an empty `async def` flow (and an async
flow running one sync task), in the same run against one temporary Prefect server.

A sync flow run joins Prefect's heartbeat thread at exit, and that thread sleeps in 1 s steps;
an async flow run does not join it. The flows of this project are `async def` for that reason.
Target: an empty async flow run < 0.2 s.

    nice .venv/bin/python bench/flow_overhead_bench.py [--runs 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import ssl
import statistics
import time

import certifi

os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.testing.utilities import prefect_test_harness

TARGET_S = 0.2


@flow
def empty_sync() -> None:
    return None


@flow
async def empty_async() -> None:
    return None


@task(cache_policy=NO_CACHE)
def one_step() -> int:
    return 1


@flow
async def async_with_one_task() -> int:
    return one_step.submit().result()


class _TlsContexts:
    """Counts `ssl.create_default_context` calls (Prefect's clients make one each, loading the
    CA bundle, even for an http:// API) so the bench can say what share of a run they cost."""

    def __init__(self) -> None:
        self.calls = 0
        self.real = ssl.create_default_context

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self.real(*args, **kwargs)


CASES = {
    "empty sync flow": lambda: empty_sync(),
    "empty async flow": lambda: asyncio.run(empty_async()),
    "async flow + 1 sync task": lambda: asyncio.run(async_with_one_task()),
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    times: dict[str, list[float]] = {name: [] for name in CASES}
    tls = _TlsContexts()
    with prefect_test_harness(server_startup_timeout=180):
        for call in CASES.values():  # warm-up: imports, first connections
            call()
        ssl.create_default_context = tls
        try:
            for _ in range(args.runs):  # interleaved, so machine load hits every case alike
                for name, call in CASES.items():
                    start = time.perf_counter()
                    call()
                    times[name].append(time.perf_counter() - start)
        finally:
            ssl.create_default_context = tls.real
    start = time.perf_counter()
    for _ in range(10):
        tls.real(cafile=certifi.where())
    ctx_s = (time.perf_counter() - start) / 10
    print(f"{'case':<26} {'median s':>9} {'min s':>7} {'max s':>7}   ({args.runs} runs each)")
    for name, ts in times.items():
        print(f"{name:<26} {statistics.median(ts):>9.3f} {min(ts):>7.3f} {max(ts):>7.3f}")
    sync = statistics.median(times["empty sync flow"])
    empty = statistics.median(times["empty async flow"])
    one = statistics.median(times["async flow + 1 sync task"])
    print(f"ratio empty sync / empty async: {sync / empty:.1f}x")
    print(f"ratio async + 1 task / empty async: {one / empty:.2f}x")
    per_run = tls.calls / (args.runs * len(CASES))
    print(
        f"TLS contexts built per flow run: {per_run:.1f} x {ctx_s * 1000:.0f} ms "
        f"= {per_run * ctx_s / empty:.0%} of an empty async flow run (the API is plain http)"
    )
    verdict = "meets" if empty < TARGET_S else "misses"
    print(f"empty async flow {empty:.3f} s {verdict} the target < {TARGET_S} s")


if __name__ == "__main__":
    main()
