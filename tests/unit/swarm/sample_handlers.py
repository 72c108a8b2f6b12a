"""Import-path handlers the swarm tests register (`tests.unit.swarm.sample_handlers:<name>`).
They run in the handler pool's spawned worker processes, so whatever they must tell the test
goes into files under `payload["dir"]`, never into module globals."""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

from tasks.errors import InvalidInput


def double(call: dict) -> dict:
    return {"doubled": [2 * v for v in call["payload"]["values"]]}


def flaky(call: dict) -> dict:
    """Fails its first attempt; notes every attempt in `<dir>/attempts`."""
    with open(Path(call["payload"]["dir"]) / "attempts", "a") as fh:
        fh.write(f"{call['attempt']}\n")
    if call["attempt"] == 1:
        raise ConnectionError("first attempt fails")
    return {"attempt": call["attempt"]}


def slow_side_effect(call: dict) -> dict:
    """Holds `<dir>/busy.lock` while it works (an attempt that finds it taken marks an overlap),
    marks its start, sleeps `payload.sleep_s` (or until the test creates `<dir>/release`, when
    `payload.until_released`), then marks its end: the side effect a killed attempt must never
    reach."""
    marks, attempt = Path(call["payload"]["dir"]), call["attempt"]
    lock = os.open(marks / "busy.lock", os.O_CREAT | os.O_RDWR)  # a killed process drops it
    try:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            (marks / f"overlap-{attempt}").touch()
        (marks / f"start-{attempt}").write_text(str(time.time()))
        deadline = time.monotonic() + call["payload"]["sleep_s"]
        if call["payload"].get("until_released"):
            while not (marks / "release").exists() and time.monotonic() < deadline:
                time.sleep(0.02)
        else:
            time.sleep(call["payload"]["sleep_s"])
        (marks / f"end-{attempt}").write_text(str(time.time()))
    finally:
        os.close(lock)
    return {"attempt": attempt}


def sleeps(call: dict) -> dict:
    time.sleep(2.0)
    return {"too": "late"}


def always_fails(call: dict) -> dict:
    raise RuntimeError(f"{call['task_id']} cannot be done")


def rejects_input(call: dict) -> dict:
    raise InvalidInput(f"{call['task_id']}: payload is not what this handler takes")


def dies(call: dict) -> dict:
    os._exit(3)
