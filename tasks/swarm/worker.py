"""What a handler worker process runs: a built-in or a `module:function` handler, by reference
(pure: no Prefect). Kept small on purpose: each worker of the handler pool imports it as it
starts, and its imports are most of what starting a worker costs."""

from __future__ import annotations

import importlib
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
    fn = BUILTINS[ref.target] if ref.kind == "builtin" else import_handler(ref.target)
    return fn(call)
