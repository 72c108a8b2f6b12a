"""Named SQL queries: a backend keeps its statements in one `.sql` file beside this module, each
starting at a `-- name: <name>` line (procrastinate's layout). `{{ other }}` in a statement
stands for the text of the block named `other` (a fragment several statements share).
Pure module (no Prefect)."""

from __future__ import annotations

import re
from importlib import resources

_NAME = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.M)
_INCLUDE = re.compile(r"\{\{\s*(\w+)\s*\}\}")


def parse(text: str) -> dict[str, str]:
    """name -> statement for every `-- name:` block of `text` (comment lines dropped)."""
    parts = _NAME.split(text)
    queries: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in queries:
            raise ValueError(f"query {name!r} is defined twice")
        lines = [line for line in body.splitlines() if not line.lstrip().startswith("--")]
        queries[name] = "\n".join(lines).strip()

    def expand(name: str, seen: tuple[str, ...] = ()) -> str:
        if name in seen:
            raise ValueError(f"query {name!r} includes itself: {' -> '.join((*seen, name))}")
        return _INCLUDE.sub(lambda m: expand(m.group(1), (*seen, name)), queries[name])

    return {name: expand(name) for name in queries}


def load(filename: str) -> dict[str, str]:
    """The named queries of `tasks/claims/<filename>` (shipped as package data)."""
    return parse(resources.files(__package__).joinpath(filename).read_text(encoding="utf-8"))
