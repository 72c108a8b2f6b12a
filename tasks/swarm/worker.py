"""What a handler worker process runs: a built-in or a `module:function` handler, by reference
(pure: no Prefect). Kept small on purpose: the fork server of the handler pool preloads it, and
its imports are most of what starting a worker costs."""

from __future__ import annotations

import contextlib
import importlib
import os
import select
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, Literal

from tasks.errors import InvalidInput
from tasks.swarm.builtins import BUILTINS, Handler


@dataclass(frozen=True)
class HandlerRef:
    """What runs a task type, in a form a worker process can receive."""

    kind: Literal["builtin", "python", "http", "scenario"]
    target: str  # built-in name, `module:function`, URL or scenario type


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


def call_handler(ref: HandlerRef, call: dict[str, Any]) -> Any:
    """Run a built-in or `python` handler in this process."""
    return timed_call(ref, call)[0]


def timed_call(ref: HandlerRef, call: dict[str, Any]) -> tuple[Any, float]:
    """(result, the handler's own time in ms): the import of a `python` handler's module (once
    per worker) is start-up, not the task's time, so it is outside the measurement."""
    fn = BUILTINS[ref.target] if ref.kind == "builtin" else import_handler(ref.target)
    t0 = time.perf_counter()
    result = fn(call)
    return result, (time.perf_counter() - t0) * 1000


def ready(targets: tuple[str, ...] = ()) -> int:
    """A worker's warm-up call: import the `python` handlers it will run (one that fails is
    reported by the task's own attempt); its pid."""
    for target in targets:
        try:
            import_handler(target)
        except InvalidInput:
            pass
    return os.getpid()


def start_worker(owner_pid: int, log_path: str) -> None:
    """Initializer of a handler worker: it keeps no descriptor of its caller's (stdin from
    /dev/null, stdout and stderr appended to `log_path`), so a caller reading the output of the
    process that owns the pool sees its end when that process ends; and it exits when
    `owner_pid` does, even in the middle of a handler, rather than outliving it."""
    null = os.open(os.devnull, os.O_RDONLY)
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    for fd, target in ((0, null), (1, log), (2, log)):
        os.dup2(target, fd)
    os.close(null)
    os.close(log)
    sys.stdout.flush()
    threading.Thread(target=_exit_with, args=(owner_pid,), daemon=True).start()


def _exit_with(owner_pid: int) -> None:
    try:
        owner = os.pidfd_open(owner_pid)
    except ProcessLookupError:  # already gone
        os._exit(1)
    except (AttributeError, OSError):  # no pidfd (not Linux >= 5.3): psutil polls the pid
        import psutil

        with contextlib.suppress(psutil.NoSuchProcess):
            psutil.Process(owner_pid).wait()
        os._exit(1)
    select.select([owner], [], [])  # readable once the owner has exited
    os._exit(1)
