"""The fixed cost of a flow run: empty flows, interleaved in the same run against one temporary
Prefect server (`prefect_test_harness`, with this project's `prefect.toml`).

- a plain `def` flow and a plain `async def` flow (Prefect's defaults, client settings too),
- an empty `async def` flow configured exactly like this project's flows (`task_runner()`,
  `validate_parameters=True`, and `unpersisted_results()` or `resumable()`),
- the same with one sync task.

A sync flow run joins Prefect's heartbeat thread at exit, and that thread sleeps in 1 s steps; an
async flow run does not join it, so the flows of this project are `async def`. For each case the
bench also counts, per run, the API requests (and the time spent waiting for their answers), the
TLS contexts Prefect builds and the client-side CPU, so it can say where an empty run's time goes.
Target: an empty flow run configured like ours < 0.2 s.

    nice .venv/bin/python bench/flow_overhead_bench.py [--runs 10] [--api-url URL]

`--api-url` measures against a running server (`make server`'s, `prefect server start`'s)
instead of a temporary one.
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import os
import shutil
import ssl
import statistics
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

os.chdir(Path(__file__).resolve().parent.parent)  # Prefect reads prefect.toml from here
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
# the resumable case persists its results under the coordination dir: a throwaway one
SCRATCH = tempfile.mkdtemp(prefix="flow-overhead-")
os.environ["REACTOR_COORDINATION_DIR"] = SCRATCH

import certifi  # noqa: E402
import httpx  # noqa: E402
from prefect import flow, task  # noqa: E402
from prefect.cache_policies import NO_CACHE  # noqa: E402
from prefect.context import AsyncClientContext, SyncClientContext  # noqa: E402
from prefect.settings import (  # noqa: E402
    PREFECT_API_URL,
    PREFECT_CLIENT_CSRF_SUPPORT_ENABLED,
    temporary_settings,
)
from prefect.testing.utilities import prefect_test_harness  # noqa: E402

from tasks.resume import resumable  # noqa: E402
from tasks.runtime import task_runner, unpersisted_results  # noqa: E402

TARGET_S = 0.2
OURS = "async, ours (unpersisted)"


@flow
def empty_sync() -> None:
    return None


@flow
async def empty_async() -> None:
    return None


@flow(task_runner=task_runner(), validate_parameters=True, **unpersisted_results())
async def empty_ours() -> None:
    return None


@flow(task_runner=task_runner(), validate_parameters=True, **resumable())
async def empty_ours_resumable() -> None:
    return None


@task(cache_policy=NO_CACHE)
def one_step() -> int:
    return 1


@flow(task_runner=task_runner(), validate_parameters=True, **unpersisted_results())
async def ours_with_one_task() -> int:
    return one_step.submit().result()


class ReusedClients:
    """What-if, not how the flows run: the empty flow configured like ours, run with API clients
    that do not build a TLS context per run: one sync client for every run (Prefect's
    `SyncClientContext`, entered once in a context of this case's own) and, per run, an async
    client given one shared, identically verified `ssl` context (`httpx_settings["verify"]`).
    What it saves is what a process running many flows gains from the context passing
    PrefectHQ/prefect#19106 added (merged in 3.4.23); a one-flow process gains nothing."""

    def __init__(self) -> None:
        self.context = contextvars.copy_context()
        self.tls = ssl.create_default_context(cafile=certifi.where())
        self.sync_client = self.context.run(SyncClientContext)
        self.context.run(self.sync_client.__enter__)

    async def _run(self) -> None:
        async with AsyncClientContext(httpx_settings={"verify": self.tls}):
            await empty_ours()

    def __call__(self) -> None:
        self.context.run(asyncio.run, self._run())

    def close(self) -> None:
        self.context.run(self.sync_client.__exit__, None, None, None)


def prefect_defaults(call):
    """`call` with Prefect's client defaults instead of prefect.toml's `[client]` table."""

    def run():
        with temporary_settings(updates={PREFECT_CLIENT_CSRF_SUPPORT_ENABLED: True}):
            return call()

    return run


CASES = {
    "sync, plain": prefect_defaults(lambda: empty_sync()),
    "async, plain": prefect_defaults(lambda: asyncio.run(empty_async())),
    OURS: lambda: asyncio.run(empty_ours()),
    "async, ours (resumable)": lambda: asyncio.run(empty_ours_resumable()),
    "ours (unpersisted) + 1 task": lambda: asyncio.run(ours_with_one_task()),
}
REUSED = "what-if: ours, clients reused"


@dataclass
class Probe:
    """What one flow run cost besides its wall time: the API requests Prefect's clients sent
    (and the time they waited for the answers) and the TLS contexts Prefect built (each loads the
    whole CA bundle, even for an http:// API). Measurement only: it wraps `httpx` and `ssl`
    entry points for the bench's own process while it runs."""

    requests: Counter[str] = field(default_factory=Counter)
    api_wait_s: float = 0.0
    tls_contexts: int = 0
    tls_s: float = 0.0

    def install(self) -> None:
        self._async_send, self._sync_send = httpx.AsyncClient.send, httpx.Client.send
        self._context = ssl.create_default_context
        probe = self

        async def async_send(client, request, **kwargs):
            start = time.perf_counter()
            try:
                return await probe._async_send(client, request, **kwargs)
            finally:
                probe.record(request, time.perf_counter() - start)

        def sync_send(client, request, **kwargs):
            start = time.perf_counter()
            try:
                return probe._sync_send(client, request, **kwargs)
            finally:
                probe.record(request, time.perf_counter() - start)

        def create_default_context(*args, **kwargs):
            start = time.perf_counter()
            try:
                return probe._context(*args, **kwargs)
            finally:
                probe.tls_contexts += 1
                probe.tls_s += time.perf_counter() - start

        httpx.AsyncClient.send, httpx.Client.send = async_send, sync_send
        ssl.create_default_context = create_default_context

    def uninstall(self) -> None:
        httpx.AsyncClient.send, httpx.Client.send = self._async_send, self._sync_send
        ssl.create_default_context = self._context

    def record(self, request: httpx.Request, waited_s: float) -> None:
        parts = ["{id}" if len(p) == 36 else p for p in request.url.path.split("/")]
        self.requests[f"{request.method} {'/'.join(parts)}"] += 1
        self.api_wait_s += waited_s


@dataclass
class Runs:
    wall_s: list[float] = field(default_factory=list)
    cpu_s: list[float] = field(default_factory=list)
    api_wait_s: list[float] = field(default_factory=list)
    requests: list[int] = field(default_factory=list)
    tls_contexts: list[int] = field(default_factory=list)
    tls_s: list[float] = field(default_factory=list)
    paths: Counter[str] = field(default_factory=Counter)


def measure(call, probe: Probe, runs: Runs) -> None:
    probe.requests.clear()
    probe.api_wait_s, probe.tls_contexts, probe.tls_s = 0.0, 0, 0.0
    wall, cpu = time.perf_counter(), time.process_time()
    call()
    runs.wall_s.append(time.perf_counter() - wall)
    runs.cpu_s.append(time.process_time() - cpu)  # the server is another process
    runs.api_wait_s.append(probe.api_wait_s)
    runs.requests.append(sum(probe.requests.values()))
    runs.tls_contexts.append(probe.tls_contexts)
    runs.tls_s.append(probe.tls_s)
    runs.paths.update(probe.requests)


def tls_context_s() -> float:
    start = time.perf_counter()
    for _ in range(10):
        ssl.create_default_context(cafile=certifi.where())
    return (time.perf_counter() - start) / 10


def report(results: dict[str, Runs], n: int, context_s: float) -> None:
    med = statistics.median
    print(
        f"{'case':<30} {'median s':>8} {'min s':>6} {'max s':>6} {'CPU s':>6} "
        f"{'API wait s':>10} {'requests':>8} {'TLS ctx':>7} {'TLS s':>6}   ({n} runs each)"
    )
    for name, r in results.items():
        print(
            f"{name:<30} {med(r.wall_s):>8.3f} {min(r.wall_s):>6.3f} {max(r.wall_s):>6.3f} "
            f"{med(r.cpu_s):>6.3f} {med(r.api_wait_s):>10.3f} {med(r.requests):>8.0f} "
            f"{med(r.tls_contexts):>7.0f} {med(r.tls_s):>6.3f}"
        )
    plain, ours = results["async, plain"], results[OURS]
    sync = med(results["sync, plain"].wall_s)
    print(f"ratio sync plain / async plain: {sync / med(plain.wall_s):.1f}x")
    print(f"ratio async plain / async ours: {med(plain.wall_s) / med(ours.wall_s):.2f}x")
    print(f"API requests per run, {OURS}:")
    for path, count in sorted(ours.paths.items()):
        print(f"  {count / n:>4.1f}  {path}")
    removed = plain.paths - ours.paths
    for path, count in sorted(removed.items()):
        print(f"  (plain async only: {count / n:.1f} x {path})")
    wall, wait, tls = med(ours.wall_s), med(ours.api_wait_s), med(ours.tls_s)
    print(
        f"where {OURS}'s {wall:.3f} s go (medians): waiting for the API {wait:.3f} s, "
        f"building {med(ours.tls_contexts):.0f} TLS contexts {tls:.3f} s, "
        f"the rest of Prefect's client work {max(wall - wait - tls, 0):.3f} s "
        f"(one TLS context alone, after the runs: {context_s * 1000:.0f} ms)"
    )
    print(
        f"{REUSED}: {med(results[REUSED].wall_s):.3f} s, "
        f"{med(results[REUSED].tls_contexts):.0f} TLS contexts per run"
    )
    verdict = "meets" if wall < TARGET_S else "misses"
    print(f"empty flow run configured like ours {wall:.3f} s {verdict} the target < {TARGET_S} s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--api-url", help="a running server's API (default: a temporary one)")
    args = parser.parse_args()
    results = {name: Runs() for name in CASES}
    probe = Probe()
    server = (
        temporary_settings(updates={PREFECT_API_URL: args.api_url})
        if args.api_url
        else prefect_test_harness(server_startup_timeout=180)
    )
    with server:
        reused = ReusedClients()
        cases = {**CASES, REUSED: reused}
        results[REUSED] = Runs()
        for call in cases.values():  # warm-up: imports, first connections, flow registration
            call()
        probe.install()
        try:
            for _ in range(args.runs):  # interleaved, so machine load hits every case alike
                for name, call in cases.items():
                    measure(call, probe, results[name])
        finally:
            probe.uninstall()
            reused.close()
    shutil.rmtree(SCRATCH, ignore_errors=True)
    report(results, args.runs, tls_context_s())


if __name__ == "__main__":
    main()
