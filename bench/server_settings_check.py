"""Are the Prefect server settings in prefect.toml still needed? Measured on the installed Prefect.

For each variant (Prefect's defaults; analytics off; recorder batches of 100; both, which is what
prefect.toml sets) this starts a real `prefect server start` on a free loopback port with its own
PREFECT_HOME (own SQLite database), runs one async flow mapping N sync tasks against it from a
separate process, and reports:

- task runs the server holds as Completed when the flow returns, and after the recorder's flush
  (history the UI shows; the recorder flushes every 5 s by default),
- server CPU seconds spent from the first task to the end of the flush (load-independent enough
  to compare variants measured in the same run),
- "database is locked" and "Failed to send telemetry" lines in the server's log,
- where the UI answers (`/` and `/v2`).

It is a check, not a benchmark (it is not matched by `make bench`'s `*_bench.py`):

    nice .venv/bin/python bench/server_settings_check.py [--tasks 300]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tasks.net import free_port

VARIANTS: dict[str, dict[str, str]] = {
    "prefect defaults": {},
    "analytics off": {"PREFECT_SERVER_ANALYTICS_ENABLED": "false"},
    "recorder batches 100": {
        "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE": "100",
        "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_READ_BATCH_SIZE": "100",
    },
    "both (prefect.toml)": {
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE": "100",
        "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_READ_BATCH_SIZE": "100",
    },
}

WORKLOAD = textwrap.dedent(
    """
    import asyncio, sys
    from prefect import flow, task
    from prefect.cache_policies import NO_CACHE

    @task(cache_policy=NO_CACHE)
    def step(i: int) -> int:
        return i * i

    @flow
    async def many_tasks(n: int) -> int:
        return sum(f.result() for f in step.map(range(n)))

    state = asyncio.run(many_tasks(int(sys.argv[1]), return_state=True))
    print(state.state_details.flow_run_id)
    """
)


def _server_cpu(proc: psutil.Process) -> float:
    total = 0.0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


async def _completed_task_runs(api: str, flow_run_id: str, limit: int) -> int:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.settings import PREFECT_API_URL, temporary_settings

    runs = []
    with temporary_settings({PREFECT_API_URL: api}):
        async with get_client() as client:
            while len(runs) < limit:  # the API returns at most 200 per call
                page = await client.read_task_runs(
                    flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])),
                    limit=200,
                    offset=len(runs),
                )
                if not page:
                    break
                runs.extend(page)
    return sum(1 for r in runs if r.state is not None and r.state.is_completed())


def _ui(base: str) -> str:
    html = {"accept": "text/html"}
    root = httpx.get(f"{base}/", headers=html, follow_redirects=False, timeout=10)
    v2 = httpx.get(f"{base}/v2", headers=html, follow_redirects=False, timeout=10)
    where = root.headers.get("location", "")
    return f"/ -> {root.status_code} {where or ''}; /v2 -> {v2.status_code}".strip()


def measure(name: str, overrides: dict[str, str], tasks: int) -> dict[str, object]:
    home = Path(tempfile.mkdtemp(prefix="prefect-settings-"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update({"PREFECT_HOME": str(home), **overrides})
    log = home / "server.log"
    server = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
         "--port", str(port)],
        cwd=home, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    try:
        started = time.monotonic()
        while True:
            try:
                if httpx.get(f"{base}/api/health", timeout=2).is_success:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.monotonic() - started > 300:
                raise RuntimeError(f"{name}: server did not start; see {log}")
            time.sleep(0.5)
        startup_s = time.monotonic() - started
        proc = psutil.Process(server.pid)
        cpu_before = _server_cpu(proc)
        client_env = {**env, "PREFECT_API_URL": f"{base}/api"}
        done = subprocess.run(
            [sys.executable, "-c", WORKLOAD, str(tasks)],
            env=client_env, capture_output=True, text=True, check=True, cwd=home,
        )  # fmt: skip
        flow_run_id = done.stdout.strip().splitlines()[-1]
        at_return = asyncio.run(_completed_task_runs(f"{base}/api", flow_run_id, tasks + 50))
        deadline = time.monotonic() + 30
        after = at_return
        while after < tasks and time.monotonic() < deadline:
            time.sleep(1)
            after = asyncio.run(_completed_task_runs(f"{base}/api", flow_run_id, tasks + 50))
        time.sleep(6)  # one more recorder flush interval
        after = asyncio.run(_completed_task_runs(f"{base}/api", flow_run_id, tasks + 50))
        cpu = _server_cpu(proc) - cpu_before
        ui = _ui(base)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    text = log.read_text(errors="replace")
    shutil.rmtree(home, ignore_errors=True)
    return {
        "variant": name,
        "startup_s": startup_s,
        "completed_at_return": at_return,
        "completed_after_flush": after,
        "server_cpu_s": cpu,
        "locked": text.count("database is locked"),
        "telemetry_errors": text.count("Failed to send telemetry"),
        "ui": ui,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=300)
    args = parser.parse_args()
    import prefect

    print(f"prefect {prefect.__version__}; one flow mapping {args.tasks} sync tasks per server")
    rows = [measure(name, env, args.tasks) for name, env in VARIANTS.items()]
    print(
        f"{'variant':<22} {'start s':>7} {'done@return':>11} {'done@flush':>10} "
        f"{'server CPU s':>12} {'db locked':>9} {'telemetry err':>13}"
    )
    for r in rows:
        print(
            f"{r['variant']:<22} {r['startup_s']:>7.1f} {r['completed_at_return']:>11} "
            f"{r['completed_after_flush']:>10} {r['server_cpu_s']:>12.1f} {r['locked']:>9} "
            f"{r['telemetry_errors']:>13}"
        )
    base = rows[0]["server_cpu_s"] or 1.0
    for r in rows[1:]:
        print(f"server CPU {r['variant']} / defaults: {r['server_cpu_s'] / base:.2f}")
    print(f"UI: {rows[-1]['ui']}")


if __name__ == "__main__":
    main()
