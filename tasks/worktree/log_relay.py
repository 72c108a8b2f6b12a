"""A service's log file without secrets.

A service outlives the flow that started it, and its output goes to `.reactor-logs/<name>.log`
in its worktree. Written straight to the file, a service that prints its own key (or an error
quoting it) leaves the key on disk. So the service writes to a pipe, and this relay — a small
process of its own, in its own session so that stopping the service's process group does not
cut the log short — appends each line to the log with every known secret replaced by
`[REDACTED]`. It runs with the secret-named variables of the service's environment, so it knows
the secrets the service was given, and ends when the service and everything it spawned have
closed the pipe.

    python -m tasks.worktree.log_relay <log file>      # reads the service's output on stdin
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from tasks.redaction import REDACTED, known_secrets, register_secret
from tasks.worktree.secret_names import is_secret_name


def relay(source, log_path: Path) -> int:
    """Copy `source` (a binary stream) line by line to `log_path`, secrets redacted; the
    number of lines written."""
    lines = 0
    with open(log_path, "ab") as log:  # first: the log exists as soon as the service runs
        for name, value in os.environ.items():
            if is_secret_name(name):
                register_secret(value)
        secrets = [s.encode() for s in known_secrets()]
        for line in source:
            for secret in secrets:
                line = line.replace(secret, REDACTED.encode())
            log.write(line)
            log.flush()  # a reader (the failure reason, `reactor worktree logs`) sees it now
            lines += 1
    return lines


if __name__ == "__main__":
    relay(sys.stdin.buffer, Path(sys.argv[1]))
