"""What the flow tests share: module-scoped runs in directories of their own, the run's log
lines found by the facts they carry, and a run's artifacts."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest


@contextlib.contextmanager
def isolated_settings(tmp_path_factory: pytest.TempPathFactory, name: str) -> Iterator[Any]:
    """Settings with coordination and exports dirs of their own, for a module-scoped run (the
    function-scoped `reactor_env` fixture's twin); the environment is restored afterwards."""
    root = tmp_path_factory.mktemp(name)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("REACTOR_COORDINATION_DIR", str(root / "coordination"))
        mp.setenv("REACTOR_EXPORTS_DIR", str(root / "exports"))
        from tasks.settings import get_settings

        yield get_settings()


def line_with(logs: str, *facts: object) -> str | None:
    """The first log line that carries every one of `facts` (ids, names, numbers), or None: a
    test checks what a line says, not how the sentence is worded."""
    wanted = [str(f) for f in facts]
    return next((ln for ln in logs.splitlines() if all(w in ln for w in wanted)), None)


def artifact_data(flow_run_id: str, key: str) -> str:
    """The content of the run's artifact `key`."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key]))
        )
    (mine,) = [a for a in artifacts if str(a.flow_run_id) == flow_run_id]
    return mine.data
