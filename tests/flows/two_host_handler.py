"""The `module:function` swarm handler of tests/flows/test_two_hosts.py.

Each call appends a `start` and an `end` record to the JSON Lines file its payload names (outside
every host's coordination dir), with the host it ran on (the basename of the parent of its
`REACTOR_COORDINATION_DIR`, which each test worker sets to `<host>/coordination`), its process
and a fresh execution id, which it also returns: the ledger's stored result then says which
execution completed the item.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path
from typing import Any

from tasks.jsonl import append_jsonl


def host_of_process() -> str:
    return Path(os.environ.get("REACTOR_COORDINATION_DIR", "?")).parent.name


def record(call: dict[str, Any]) -> dict[str, Any]:
    payload = call["payload"]
    mine = {
        "item": payload["item"],
        "run_id": call.get("run_id"),
        "host": host_of_process(),
        "pid": os.getpid(),
        "attempt": call.get("attempt"),
        "execution": uuid.uuid4().hex,
    }
    append_jsonl(payload["log"], [{**mine, "event": "start", "at": time.time()}])
    time.sleep(float(payload.get("sleep_s", 0.5)))
    append_jsonl(payload["log"], [{**mine, "event": "end", "at": time.time()}])
    return {"execution": mine["execution"], "host": mine["host"]}
