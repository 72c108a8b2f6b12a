"""Worktree deployment bench: real worktrees, real processes, real HTTP health checks.

1. N independent services deployed in parallel vs one after another (same run): the ratio.
2. A diamond (db -> api, web -> gateway): time from the first start to the last healthy vs the
   sum of the services' own start times along the critical path, each measured here by starting
   the same service alone (target <= 1.25).

Run: .venv/bin/python bench/worktree_bench.py [N]   (uses a temporary Prefect server)
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "ERROR")

POLL_S = 0.05  # health poll interval for the bench (the default, 1 s, would dominate)
DELAYS = {"db": 0.6, "api": 0.4, "web": 0.2, "gateway": 0.3}  # START_DELAY_S: the app "booting"


def spec(name: str, deps=(), delay: float = 0.3) -> dict:
    """The sample service taking `delay` seconds to boot."""
    from tasks.worktree.sample_repo import sample_service

    return sample_service(name, deps, env={"START_DELAY_S": str(delay)})


def own_start_s(repo: Path, delay: float, runs: int = 3) -> float:
    """Median time from launch to healthy of the sample service started alone."""
    from tasks.net import free_port
    from tasks.worktree import environment, health, process

    times = []
    for _ in range(runs):
        port = free_port()  # the kernel's pick: other jobs' services use fixed ranges
        env = environment.process_env({"PORT": str(port)}, {"START_DELAY_S": str(delay)})
        started = time.perf_counter()
        identity = process.start_process(
            process.resolve_executable(["python", "service.py"]), repo, env, repo / "own.log"
        )
        check, _ = health.wait_healthy(health.health_url(port), 30, POLL_S)
        times.append(time.perf_counter() - started)
        process.stop_process(identity)
        assert check.healthy, check.detail
    return statistics.median(times)


def main(n: int = 6) -> None:
    # the flow's thread pool is sized when the flow module is imported: one thread per service
    os.environ.setdefault("REACTOR_MAX_WORKERS", str(max(4, n)))
    from flows.worktree_deployment import worktree_deployment
    from flows.worktree_teardown import worktree_teardown
    from tasks.graph import critical_path
    from tasks.worktree.models import DeploymentRequest, TeardownRequest
    from tasks.worktree.sample_repo import make_sample_repo

    root = Path(tempfile.mkdtemp(prefix="worktree-bench-"))
    os.environ["REACTOR_COORDINATION_DIR"] = str(root / "coordination")
    os.environ["REACTOR_EXPORTS_DIR"] = str(root / "exports")
    names = [f"svc{i}" for i in range(n)]
    repo = make_sample_repo(root / "repo", [*names, *DELAYS])

    def deploy(worktrees, parallel=True):
        request = DeploymentRequest(
            repo_path=repo,
            worktrees=worktrees,
            parallel=parallel,
            health_poll_interval_s=POLL_S,
            health_check_timeout_s=30,
        )
        started = time.perf_counter()
        result = asyncio.run(worktree_deployment(request))
        wall = time.perf_counter() - started
        asyncio.run(worktree_teardown(TeardownRequest(repo_path=repo)))
        assert result.healthy == len(worktrees), result
        return wall, result

    independent = [spec(name, delay=0.5) for name in names]
    deploy(independent[:1])  # warm-up: imports, first flow run
    par_wall, par = deploy(independent, parallel=True)
    seq_wall, seq = deploy(independent, parallel=False)

    own = {name: own_start_s(repo, delay) for name, delay in DELAYS.items()}
    graph = {"db": [], "api": ["db"], "web": ["db"], "gateway": ["api", "web"]}
    diamond = [spec(name, graph[name], DELAYS[name]) for name in graph]
    _, dia = deploy(diamond)
    cp_s, cp_path = critical_path(graph, own)
    tth_s = dia.time_to_healthy_ms / 1000

    print(f"{'measurement':58} {'seconds':>8}")
    print(f"{f'{n} independent services, parallel (flow wall)':58} {par_wall:8.2f}")
    print(f"{f'{n} independent services, one after another (flow wall)':58} {seq_wall:8.2f}")
    print(f"{'  of which time-to-healthy, parallel':58} {par.time_to_healthy_ms / 1000:8.2f}")
    print(f"{'  of which time-to-healthy, sequential':58} {seq.time_to_healthy_ms / 1000:8.2f}")
    for name in graph:
        print(f"{f'own start time of {name} (alone, median of 3)':58} {own[name]:8.2f}")
    print(f"{'diamond critical path ' + ' -> '.join(cp_path) + ', sum of own':58} {cp_s:8.2f}")
    print(f"{'diamond time-to-healthy (first start -> last healthy)':58} {tth_s:8.2f}")
    by = {s.name: s for s in dia.services}
    handoffs = [
        (by[n].started_at - max(by[d].healthy_at for d in deps)).total_seconds()
        for n, deps in graph.items()
        if deps
    ]
    print(
        f"{'mean dependency hand-off (deps healthy -> dependent start)':58} "
        f"{statistics.mean(handoffs):8.2f}"
    )
    print(f"ratio sequential/parallel (wall): {seq_wall / par_wall:.2f}x")
    seq_tth, par_tth = seq.time_to_healthy_ms, par.time_to_healthy_ms
    print(f"ratio sequential/parallel (time-to-healthy): {seq_tth / par_tth:.2f}x")
    ratio = tth_s / cp_s
    verdict = "meets" if ratio <= 1.25 else "MISSES"
    print(
        f"ratio time-to-healthy / critical-path own start: {ratio:.2f} ({verdict} target <= 1.25)"
    )


if __name__ == "__main__":
    from prefect.testing.utilities import prefect_test_harness

    count = int(sys.argv[1]) if len(sys.argv) > 1 else 6
    if os.environ.get("PREFECT_API_URL"):
        main(count)
    else:
        with prefect_test_harness(server_startup_timeout=120):
            main(count)
