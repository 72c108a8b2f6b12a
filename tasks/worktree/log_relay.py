"""A service's log file without secrets.

A service outlives the flow that started it, and its output goes to `.reactor-logs/<name>.log`
in its worktree. Written straight to the file, a service that prints its own key (or an error
quoting it) leaves the key on disk. So the service writes to a pipe, and this relay — a small
process of its own, in its own session so that stopping the service's process group does not
cut the log short — appends each line to the log with every secret it was given replaced by
`[REDACTED]`, and ends when the service and everything it spawned have closed the pipe.

The starter hands over the secrets (`SECRETS_VAR`, a JSON list: what it knows plus the
service's secret-named variables), so the relay imports nothing but this module and
`tasks.redaction`: building the settings here cost ~0.8 s of CPU per service start, which
six services starting at once on two cores felt in their time to healthy (measured with
bench/worktree_bench.py).

    python -m tasks.worktree.log_relay <log file>      # reads the service's output on stdin
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from tasks.redaction import REDACTED

SECRETS_VAR = "REACTOR_RELAY_SECRETS"


def relay(source, log_path: Path, secrets: list[str]) -> int:
    """Copy `source` (a binary stream) line by line to `log_path`, `secrets` redacted (longest
    first); the number of lines written."""
    lines = 0
    encoded = [s.encode() for s in sorted(secrets, key=len, reverse=True) if s]
    with open(log_path, "ab") as log:  # first: the log exists as soon as the service runs
        for line in source:
            for secret in encoded:
                line = line.replace(secret, REDACTED.encode())
            log.write(line)
            log.flush()  # a reader (the failure reason, `reactor worktree logs`) sees it now
            lines += 1
    return lines


if __name__ == "__main__":
    relay(sys.stdin.buffer, Path(sys.argv[1]), json.loads(os.environ.get(SECRETS_VAR, "[]")))
