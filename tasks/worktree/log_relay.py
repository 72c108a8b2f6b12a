"""A service's log file without secrets, bounded in size.

A service outlives the flow that started it, and its output goes to `.reactor-logs/<name>.log`
in its worktree. Written straight to the file, a service that prints its own key (or an error
quoting it) leaves the key on disk. So the service writes to a pipe, and this relay — a small
process of its own, in its own session so that stopping the service's process group does not
cut the log short — appends each line to the log with every secret it was given replaced by
`[REDACTED]`, and ends when the service and everything it spawned have closed the pipe.

Bounded: a line longer than `MAX_LINE_BYTES` is cut there (the rest of it is dropped and the
cut says how much), so a service printing without newlines cannot grow the relay's memory;
before a write would take the log past `MAX_LOG_BYTES` it is rotated like the span log
(`<name>.log.1` … `.<LOG_BACKUPS>`, the oldest dropped, under a file lock so that two relays
of one service rotate it once).

The starter hands over the secrets (`SECRETS_VAR`, a JSON list: the ones the service holds),
so the relay imports nothing but this module and `tasks.redaction` (filelock once it rotates):
building the settings here cost ~0.8 s of CPU per service start, which six services starting at
once on two cores felt in their time to healthy (measured with bench/worktree_bench.py).

    python -m tasks.worktree.log_relay <log file> [max log bytes] [backups] [max line bytes]
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import BinaryIO

from tasks.logrotate import rotate
from tasks.redaction import REDACTED

SECRETS_VAR = "REACTOR_RELAY_SECRETS"
MAX_LINE_BYTES = 64 * 1024
MAX_LOG_BYTES = 16 * 1024 * 1024
LOG_BACKUPS = 3


class RotatingLog:
    """Appends to `path`, rotating it before a write would take it past `max_bytes`. The size
    is the file's, not this writer's count: another relay of the same service may append too."""

    def __init__(self, path: Path, max_bytes: int, backups: int) -> None:
        self.path, self.max_bytes, self.backups = path, max_bytes, max(backups, 1)
        self._file = open(path, "ab")  # noqa: SIM115 (kept open across writes, closed in close)

    def write(self, data: bytes) -> None:
        if os.fstat(self._file.fileno()).st_size + len(data) > self.max_bytes:
            self._rotate(len(data))
        self._file.write(data)
        self._file.flush()  # a reader (the failure reason, `process.log_tail`) sees it now

    def _rotate(self, incoming: int) -> None:
        rotate(self.path, incoming, self.max_bytes, self.backups)
        self._file.close()  # reopened whether this relay or another one rotated it
        self._file = open(self.path, "ab")  # noqa: SIM115

    def close(self) -> None:
        self._file.close()


def _redact(line: bytes, secrets: list[bytes], cut: bool) -> bytes:
    for secret in secrets:
        line = line.replace(secret, REDACTED.encode())
    if cut:  # a secret the cut went through leaves no prefix of itself either
        for secret in secrets:
            for k in range(min(len(secret), len(line)) - 1, 0, -1):
                if line.endswith(secret[:k]):
                    return line[:-k] + REDACTED.encode()
    return line


def relay(
    source: BinaryIO,
    log_path: Path,
    secrets: list[str],
    max_bytes: int = MAX_LOG_BYTES,
    backups: int = LOG_BACKUPS,
    max_line: int = MAX_LINE_BYTES,
) -> int:
    """Copy `source` (a binary stream) line by line to `log_path`, `secrets` redacted (longest
    first), each line at most `max_line` bytes, the log rotated at `max_bytes`; the number of
    lines written."""
    lines = 0
    encoded = [s.encode() for s in sorted(secrets, key=len, reverse=True) if s]
    log = RotatingLog(log_path, max_bytes, backups)  # first: the log exists once the service runs
    try:
        while line := source.readline(max_line):
            dropped = 0
            if len(line) == max_line and not line.endswith(b"\n"):  # drop the rest, never hold it
                while rest := source.readline(max_line):
                    dropped += len(rest) - rest.endswith(b"\n")
                    if rest.endswith(b"\n"):
                        break
            text = _redact(line.removesuffix(b"\n"), encoded, cut=dropped > 0)
            if dropped:
                text += f" [line cut: {dropped} more bytes dropped]".encode()
            text += b"\n"
            log.write(text)
            lines += 1
    finally:
        log.close()
    return lines


if __name__ == "__main__":
    limits = [int(a) for a in sys.argv[2:5]]
    relay(
        sys.stdin.buffer,
        Path(sys.argv[1]),
        json.loads(os.environ.get(SECRETS_VAR, "[]")),
        *limits,
    )
