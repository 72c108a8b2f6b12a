"""What a flow shows in the Prefect UI: a table, a markdown summary, a progress bar.
Imports Prefect (edge module).

Prefect's artifact functions return a coroutine when called from an async flow (its
`async_dispatch`); `_sync=True` makes them run here either way, so sync and async flows
publish the same way."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)

from tasks.redaction import redact


def artifact_key(text: str) -> str:
    """Prefect artifact keys allow lowercase letters, digits and dashes only."""
    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-") or "reactor"


def publish_table(key: str, rows: Sequence[Mapping[str, Any]], description: str) -> None:
    create_table_artifact(
        key=artifact_key(key),
        table=[redact(dict(r)) for r in rows],
        description=description,
        _sync=True,
    )


def publish_markdown(key: str, markdown: str, description: str) -> None:
    create_markdown_artifact(
        key=artifact_key(key), markdown=redact(markdown), description=description, _sync=True
    )


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    head = "| " + " | ".join(columns) + " |\n|" + "---|" * len(columns) + "\n"
    body = "".join("| " + " | ".join(str(r.get(c, "")) for c in columns) + " |\n" for r in rows)
    return head + body


class Progress:
    """A progress artifact updated as work completes (percent of `total`).

    Always through Prefect's sync API (`_sync=True`): inside an async flow Prefect would
    otherwise hand back coroutines that nobody awaits, and the artifact would never exist."""

    def __init__(self, total: int, description: str) -> None:
        self.total = max(total, 1)
        self.done = 0
        self.id: UUID | None = create_progress_artifact(
            progress=0.0, description=description, _sync=True
        )

    def advance(self, n: int = 1) -> None:
        self.done += n
        if self.id is not None:
            progress = min(100.0, 100.0 * self.done / self.total)
            update_progress_artifact(self.id, progress=progress, _sync=True)
