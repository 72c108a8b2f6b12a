"""The one ID generator: `<kind>_<ns>_<pid>`.

`<ns>` is `time.time_ns()` forced strictly increasing within the process. Two processes running
at once can read the same nanosecond (`python bench/ids_bench.py`: a trial clashes 60k–291k times
in 2M reads each on two cores, or not at all), so a short process-unique suffix (the PID
in base 36) makes IDs unique across the processes of a host.
"""

from __future__ import annotations

import os
import threading
import time

KINDS = frozenset({"agent", "work", "claim", "coord"})

_lock = threading.Lock()
_last_ns = 0


def _base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if n == 0:
            return out


def next_ns() -> int:
    """A nanosecond timestamp strictly greater than every earlier one from this process."""
    global _last_ns
    with _lock:
        now = time.time_ns()
        _last_ns = now if now > _last_ns else _last_ns + 1
        return _last_ns


def new_id(kind: str) -> str:
    """`agent_…`, `work_…`, `claim_…` or `coord_…`: unique across threads and processes."""
    if kind not in KINDS:
        raise ValueError(f"unknown id kind {kind!r}; expected one of {sorted(KINDS)}")
    return f"{kind}_{next_ns()}_{_base36(os.getpid())}"


def id_timestamp_ns(identifier: str) -> int:
    """The nanosecond timestamp embedded in an ID made by `new_id`."""
    return int(identifier.split("_")[1])
