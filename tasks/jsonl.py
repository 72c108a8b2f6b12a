"""The one JSON Lines appender and reader (span log, alerts, coordination log). No known
secret value is written (`tasks.redaction.dumps_redacted`).

Each append is a single `write()` on an `O_APPEND` file, so concurrent writers in different
processes never interleave lines (POSIX appends of one buffer are atomic on a local file).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from tasks.redaction import dumps_redacted


def append_jsonl(path: Path | str, records: Iterable[Any]) -> int:
    """Append `records` as JSON lines in one write; returns how many were written."""
    lines = [dumps_redacted(r, default=str) + "\n" for r in records]  # no known secret kept
    if not lines:
        return 0
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write("".join(lines))
    return len(lines)


def iter_jsonl(path: Path | str) -> Iterator[Any]:
    """The records of a JSON Lines file in order; a missing file has none. A torn last line
    (a writer killed mid-write) is skipped, any other bad line raises ValueError naming it."""
    path = Path(path)
    if not path.exists():
        return
    lines = path.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            yield json.loads(line)
        except json.JSONDecodeError as exc:
            if number == len(lines):
                return
            raise ValueError(f"{path}: line {number} is not JSON ({exc.msg})") from exc


def read_jsonl(path: Path | str) -> list[Any]:
    return list(iter_jsonl(path))


def iter_lines_backwards(path: Path | str, block: int = 64 * 1024) -> Iterator[bytes]:
    """The non-empty lines of a file, last first, reading blocks from the end: a reader that
    wants only the newest lines of a large log stops early and never reads the rest. (Written
    here: `file_read_backwards`, the one package for it, decodes text and is unmaintained.)
    A missing file has none."""
    if not Path(path).exists():
        return
    with open(path, "rb") as fh:
        end, carry = fh.seek(0, 2), b""
        while end > 0:
            start = max(0, end - block)
            fh.seek(start)
            lines = (fh.read(end - start) + carry).split(b"\n")
            # the first piece may be the end of a line that starts in the block before
            carry = lines.pop(0) if start > 0 else b""
            yield from (line for line in reversed(lines) if line.strip())
            end = start
