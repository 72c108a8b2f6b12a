"""What makes a flow run resumable after its process died (docs/operations.md, "After a crash").

- **Result storage**: every flow persists its task results. By default they go to
  `<coordination dir>/results` (a `LocalFileSystem` whose base path is read from the settings
  at the start of each flow run, so a test's or a worker's own coordination dir is honoured
  without re-importing the flow); `REACTOR_RESULT_STORAGE=<block-type>/<name>` names any
  Prefect storage block instead (S3, GCS, a shared volume: what several hosts need).
- **Cache keys equal on a retry of the same run**: `RESUMABLE` = the flow run id + the task's
  inputs + its source. A retried run (same flow-run id) finds the records of the tasks that
  finished and loads them instead of running them again (measured on Prefect 3.9.1: those task
  runs end `Cached`); another run never sees them. A task killed mid-way runs again, so a
  side-effecting task is also idempotent on its own, keyed by (run id, step, item).

Imports Prefect (edge module).
"""

from __future__ import annotations

import os
from pathlib import Path, PosixPath
from typing import Any

from prefect.cache_policies import INPUTS, RUN_ID, TASK_SOURCE

from tasks.settings import get_settings

RESULTS_DIR = "results"
STORAGE_ENV = "REACTOR_RESULT_STORAGE"

RESUMABLE = RUN_ID + TASK_SOURCE + INPUTS


def results_dir() -> Path:
    return get_settings().coordination_dir / RESULTS_DIR


class CoordinationResults(PosixPath):
    """`<coordination dir>/results`, read from the settings whenever Prefect resolves it.

    Prefect takes a flow's `result_storage` as a saved block, a block slug or a `Path`, and
    turns a `Path` into a `LocalFileSystem` with `str(path)` at the start of each flow run
    (`prefect.results.resolve_result_storage`). An unsaved block is refused at decoration time,
    and a plain `Path` would freeze the coordination dir of the moment the module was imported;
    this path answers the current one (a worker's, a test's own) each time it is turned into a
    string."""

    def __str__(self) -> str:
        return str(results_dir())

    def __fspath__(self) -> str:
        return str(results_dir())


def result_storage() -> str | Path:
    """The configured storage block's slug (`REACTOR_RESULT_STORAGE`), else the coordination
    dir's `results` folder. Read when a flow module is imported: a worker sets it in its env."""
    return os.environ.get(STORAGE_ENV) or CoordinationResults(RESULTS_DIR)


def resumable() -> dict[str, Any]:
    """The `@flow` options of a resumable flow: results persisted where `result_storage` says."""
    return {"persist_result": True, "result_storage": result_storage()}
