"""The handler worker processes: started and warm before the first task, so a task's time is
its own; the handler's own time measured apart from its module's import; and a worker keeps
none of its caller's descriptors and does not outlive the process that owns the pool (a
caller reading that process's output sees its end when it ends)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from tasks.swarm.handlers import (
    HandlerRef,
    _server,
    pool_targets,
    run_with_retries,
    shutdown_pools,
    start_workers,
)
from tasks.swarm.models import HandlerSpec

ROOT = Path(__file__).resolve().parents[3]
HANDLERS = "tests.unit.swarm.process_handlers"


def _call(payload: dict | None = None) -> dict:
    return {
        "task_id": "t-1", "type": "probe", "priority": "high", "payload": payload or {},
        "inputs": {}, "estimated_duration_ms": 100,
    }  # fmt: skip


def _processes() -> set[int]:
    return {p.pid for p in psutil.Process().children(recursive=True)}


@pytest.fixture
def fresh_pools(reactor_env):
    shutdown_pools()
    yield
    shutdown_pools()


def test_the_first_task_runs_on_a_worker_started_before_it(fresh_pools):
    before = _processes()
    # this process's one fork server may be running already (a crash test's, before this one)
    new_server = _server()._forkserver_pid is None
    started_ms = start_workers(2, (f"{HANDLERS}:whoami",))
    ready = _processes()
    assert started_ms > 0 and len(ready - before) >= 2 + new_server  # the workers (and server)
    whoami = HandlerRef("python", f"{HANDLERS}:whoami")
    outcome = run_with_retries(whoami, _call(), 30, 0, workers=2)
    assert outcome.error is None
    assert outcome.result["pid"] in ready - before  # a process that was there before the task
    assert _processes() == ready  # the task started none
    assert start_workers(2) < started_ms  # already running: not started again


def test_the_handlers_own_time_leaves_out_the_import_of_its_module(fresh_pools):
    start_workers(1)
    target = "tests.unit.swarm.slow_import_handler:quick"
    t0 = time.perf_counter()
    outcome = run_with_retries(HandlerRef("python", target), _call(), 60, 0, workers=1)
    attempt_ms = (time.perf_counter() - t0) * 1000
    assert outcome.result == {"quick": True}
    assert attempt_ms >= 2000  # the worker imported the module (it sleeps 2 s) in this attempt
    assert outcome.handler_ms is not None and outcome.handler_ms < 1000


def test_pool_targets_name_the_python_handlers_and_skip_what_runs_elsewhere():
    handlers = {
        "py": HandlerSpec(kind="python", target=f"{HANDLERS}:whoami"),
        "web": HandlerSpec(kind="http", target="http://127.0.0.1:9/x"),
    }
    assert pool_targets(["py", "analysis", "web"], handlers) == (f"{HANDLERS}:whoami",)
    assert pool_targets(["analysis"], handlers) == ()
    assert pool_targets(["web", "trace.check"], handlers) is None


def test_a_killed_owner_leaves_no_worker_holding_its_output(tmp_path):
    # a process that owns a pool whose worker is busy in a 120 s handler is killed; a caller
    # capturing its output must see the end at once, and the worker must be gone
    code = textwrap.dedent(
        f"""
        import os, sys, time
        sys.path.insert(0, {str(ROOT)!r})
        from tasks.swarm.handlers import HandlerRef, start_workers, worker_pool
        from tasks.swarm.worker import call_handler
        if __name__ == "__main__":
            start_workers(1)
            call = {{"payload": {{"dir": {str(tmp_path)!r}, "sleep_s": 120}}}}
            ref = HandlerRef("python", "{HANDLERS}:pid_then_sleep")
            worker_pool(1).schedule(call_handler, args=(ref, call))
            deadline = time.monotonic() + 60
            while not os.path.exists({str(tmp_path / "pid")!r}) and time.monotonic() < deadline:
                time.sleep(0.05)
            print("busy", flush=True)
            os.kill(os.getpid(), 9)
        """
    )
    script = tmp_path / "owner.py"
    script.write_text(code)
    env = {**os.environ, "REACTOR_COORDINATION_DIR": str(tmp_path / "coordination")}
    owner = subprocess.Popen(
        [sys.executable, str(script)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        out, err = owner.communicate(timeout=100)  # before the fix: held until the handler ended
    finally:
        owner.kill()
    assert "busy" in out and owner.returncode == -9
    worker = int((tmp_path / "pid").read_text())
    deadline = time.monotonic() + 30
    while psutil.pid_exists(worker) and psutil.Process(worker).status() != "zombie":
        assert time.monotonic() < deadline, "the busy worker outlived its owner"
        time.sleep(0.05)
    assert "handler output" not in out and "handler error output" not in err
    log = (tmp_path / "coordination" / "handler-workers.log").read_text()
    assert "handler output" in log and "handler error output" in log
