"""The process start of every test whose processes contend for real (file locks, SQLite and
PostgreSQL connections, id generation): tests/contract/test_ledger.py, tests/unit/test_store.py,
tests/unit/test_ids.py, tests/unit/worktree/test_registry.py."""

from __future__ import annotations

import contextlib
import multiprocessing as mp
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def forkserver(*preload: str) -> Iterator[Any]:
    """multiprocessing's fork server context, for tests whose processes contend for real. A
    child forks from a server that has only imported modules, not from this process, whose
    threads (Prefect's) a fork would copy mid-lock, and starts in milliseconds where a spawned
    interpreter imports pytest and the project again (~0.2-0.5 s of CPU each).
    A process has one fork server, whose preload list is the one set when it starts: when none
    runs, this starts one importing `preload` (modules importable from the working directory,
    where the server's sys.path starts) and stops it afterwards, the list restored, so that the
    next user (tests/crash.py, the swarm's handler pool) starts its own with its own list; a
    running one is used as it is. Children see the server's environment, not the test's: pass
    them what they need."""
    from multiprocessing import forkserver as server_module

    # private, as in tasks/swarm/handlers.py: no public way to ask whether it runs (CPython 3.11)
    server = server_module._forkserver
    context = mp.get_context("forkserver")
    if server._forkserver_pid is not None:
        yield context
        return
    before = list(server._preload_modules)
    context.set_forkserver_preload(list(preload))
    try:
        yield context
    finally:
        server._stop()
        context.set_forkserver_preload(before)
