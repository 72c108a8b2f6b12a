"""Kill-and-resume helper for the crash tests (tests/flows/test_crash_*.py).

`run_and_kill` starts a flow in a child process against the session's Prefect test server,
watches the run's own progress (a predicate over files or records the run writes) and SIGKILLs
the child the moment the predicate holds: no clean-up code of the run gets to run, as after an
OOM kill or a reboot. `resume` then finishes the same flow run through
`reactor runs resume` (reactor/commands/runs.py) in the test's process, `resume_elsewhere` in a
child of its own (another host).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import multiprocessing
import os
import signal
import sys
import time
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID, uuid4

import psutil

from tests.waiting import wait_until

POLL_S = 0.01


@dataclass
class Killed:
    flow_run_id: UUID
    pid: int
    # processes the child had started (services...), alive when it was killed
    orphans: list[psutil.Process] = field(default_factory=list)


# The flow modules the crash tests run: the fork server imports them once (~5-8 s of CPU each
# time a fresh interpreter does), and every child forks from it already imported. Then what a
# run imports only when it runs (measured with py-spy in the children): NLTK's stemmer at the
# first SPR compression (2-8 s of CPU, scipy included), FastAPI's encoder when Prefect
# serialises a flow's parameters, Prefect's engines and anyio's backend at the first call.
PRELOAD = [
    "tests.crash",
    "flows.health_monitor",
    "flows.spr_pipeline",
    "flows.swarm_coordination",
    "flows.trace_orchestration",
    "flows.worktree_deployment",
    "nltk.stem.porter",
    "fastapi.encoders",
    "prefect.flow_engine",
    "prefect.task_engine",
    "prefect.utilities.visualization",
    "anyio._backends._asyncio",
]


def _context() -> Any:
    # a fork server, not a fork of this process: the test process runs threads (Prefect's
    # clients, loggers) that a fork would copy mid-lock; the server has only imported modules
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    return context


def _as_a_fresh_process(env: dict[str, str], module: str) -> None:
    """Make this fork server child what a fresh process of the test would be: the test's
    environment as it is now (the fork server kept the one it started with), Prefect's settings
    built from it again (the server's import built them once), and `module` imported again
    under it (its imports are cached): the fork server's import fixed the options a flow module
    reads at import (REACTOR_RESULT_STORAGE) to the server's own environment."""
    os.environ.clear()
    os.environ.update(env)
    # a flow process, not pytest: the fork server made pytest's script this process's
    # __main__, which a fork server the run starts itself (the swarm's handler pool) would
    # import again in its fresh interpreter (~2 s of CPU per run)
    sys.modules["__main__"] = types.ModuleType("__main__")
    from prefect.context import refresh_global_settings_context

    refresh_global_settings_context()
    importlib.reload(importlib.import_module(module))


def _child(entrypoint: str, parameters: dict[str, Any], tag: str, env: dict[str, str]) -> None:
    _as_a_fresh_process(env, entrypoint.partition(":")[0])
    from prefect import tags
    from prefect.flows import load_flow_from_entrypoint

    flow = load_flow_from_entrypoint(entrypoint)
    with tags(tag), _leaving_nothing_running():
        asyncio.run(flow(**parameters))


def _resume_child(flow_run_id: UUID, entrypoint: str, env: dict[str, str]) -> None:
    _as_a_fresh_process(env, entrypoint.partition(":")[0])
    with _leaving_nothing_running():
        resume(flow_run_id)


@contextlib.contextmanager
def _leaving_nothing_running() -> Iterator[None]:
    """Stop the swarm's handler workers when the run returns or fails: a multiprocessing child
    joins its children at exit, and a run that failed while they started kept its child alive
    (the test then waited out its bound instead of seeing the run end)."""
    from tasks.swarm.handlers import shutdown_pools

    try:
        yield
    finally:
        shutdown_pools()


def _child_env() -> dict[str, str]:
    from prefect.settings import PREFECT_API_URL

    env = dict(os.environ)
    env["PREFECT_API_URL"] = PREFECT_API_URL.value()
    return env


async def _flow_run_by_tag(tag: str) -> UUID | None:
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags

    async with get_client() as client:
        runs = await client.read_flow_runs(
            flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[tag]))
        )
    return runs[0].id if runs else None


def _frozen(pid: int) -> bool:
    """Stop `pid` and wait until it is stopped (False when it has already exited)."""
    try:
        os.kill(pid, signal.SIGSTOP)
        process = psutil.Process(pid)
        stopped = (psutil.STATUS_STOPPED, psutil.STATUS_ZOMBIE)
        wait_until("the run to stop", lambda: process.status() in stopped, every_s=0.001)
        return process.status() == psutil.STATUS_STOPPED
    except (ProcessLookupError, psutil.NoSuchProcess):
        return False


def _at_kill_point(pid: int, kill_when: Callable[[], bool], freeze: bool) -> bool:
    """`kill_when()`, asked while the run is stopped when `freeze` (and left stopped if true)."""
    if freeze and not _frozen(pid):
        return False  # it has exited: the caller says so
    if kill_when():
        return True
    if freeze:
        os.kill(pid, signal.SIGCONT)
    return False


def run_and_kill(
    entrypoint: str,
    parameters: dict[str, Any],
    kill_when: Callable[[], bool],
    timeout_s: float = 300,  # the run reaches its kill point in seconds; loaded shared cores
    freeze: bool = False,
) -> Killed:
    """Run `entrypoint` (module:flow) with `parameters` (JSON-able) in a child process and
    SIGKILL it as soon as `kill_when()` is true. Fails if the run ends first. `freeze` stops
    the run (SIGSTOP) while `kill_when` looks, for a look slow enough (a bucket listing) that
    the run could pass its kill point and finish in between."""
    tag = f"crash-{uuid4().hex[:12]}"
    proc = _context().Process(target=_child, args=(entrypoint, parameters, tag, _child_env()))
    proc.start()
    deadline = time.monotonic() + timeout_s
    try:
        while not _at_kill_point(proc.pid, kill_when, freeze):
            if not proc.is_alive():
                raise AssertionError(f"the run ended (exit {proc.exitcode}) before the kill point")
            if time.monotonic() > deadline:
                raise AssertionError(f"kill point not reached within {timeout_s:.0f} s")
            time.sleep(POLL_S)
        children = psutil.Process(proc.pid).children(recursive=True)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.join(10)
        if proc.is_alive():  # only on a failed assertion above
            proc.kill()
            proc.join(10)
    flow_run_id = None
    for _ in range(100):  # the run is created at the child's start; it is there by now
        flow_run_id = asyncio.run(_flow_run_by_tag(tag))
        if flow_run_id:
            break
        time.sleep(0.1)
    assert flow_run_id is not None, "the child never created its flow run"
    return Killed(flow_run_id, proc.pid, [c for c in children if c.is_running()])


def resume(flow_run_id: UUID):
    """`reactor runs resume --force <id>` in this process: the outcome (state, run count)."""
    from reactor.commands.runs import resume_run

    return asyncio.run(resume_run(flow_run_id, force=True))


def resume_elsewhere(flow_run_id: UUID, entrypoint: str, timeout_s: float = 300) -> int | None:
    """`reactor runs resume --force <id>` in a process of its own, as another host runs it
    (one that never ran `entrypoint`'s module in this test): its exit code."""
    proc = _context().Process(target=_resume_child, args=(flow_run_id, entrypoint, _child_env()))
    proc.start()
    proc.join(timeout_s)
    if proc.is_alive():
        proc.kill()
        proc.join(10)
    return proc.exitcode


def persisted_results(settings) -> int:
    """Task results the run has persisted completely under `<coordination dir>/results`.
    Prefect's local storage writes a record in place: a file being written (or cut short by
    the kill) is not JSON yet and does not count."""
    folder = settings.coordination_dir / "results"
    done = 0
    for path in folder.iterdir() if folder.is_dir() else ():
        try:
            json.loads(path.read_bytes())
        except (OSError, ValueError):
            continue
        done += 1
    return done


async def _flow_run(flow_run_id: UUID):
    from prefect import get_client

    async with get_client() as client:
        return await client.read_flow_run(flow_run_id)


def flow_run(flow_run_id: UUID):
    return asyncio.run(_flow_run(flow_run_id))


def state_of(flow_run_id: UUID) -> str:
    return flow_run(flow_run_id).state_name or ""
