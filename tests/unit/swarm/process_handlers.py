"""`module:function` handlers the worker-process tests register
(`tests.unit.swarm.process_handlers:<name>`): they tell the test which process ran them through
their result or a file under `payload["dir"]`."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path


def whoami(call: dict) -> dict:
    return {"pid": os.getpid()}


def pid_then_sleep(call: dict) -> dict:
    """Prints a line, writes its pid to `<dir>/pid`, then works for `payload.sleep_s`."""
    print("handler output", flush=True)
    print("handler error output", file=sys.stderr, flush=True)
    marks = Path(call["payload"]["dir"])
    (marks / "pid.tmp").write_text(str(os.getpid()))
    (marks / "pid.tmp").rename(marks / "pid")
    time.sleep(call["payload"]["sleep_s"])
    return {"slept": True}


def naps(call: dict) -> dict:
    """Works for `payload.sleep_s`."""
    time.sleep(call["payload"]["sleep_s"])
    return {"slept_s": call["payload"]["sleep_s"]}
