"""How the flows run: the task runner chosen from settings (a bounded thread pool by default,
Dask when asked) and the result options every `@flow` states explicitly. Imports Prefect (edge
module)."""

from __future__ import annotations

from typing import Any

from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from tasks.resume import result_storage
from tasks.settings import Settings, get_settings


def task_runner(settings: Settings | None = None) -> TaskRunner:
    """`REACTOR_TASK_RUNNER=threads` (default, `REACTOR_MAX_WORKERS` threads) or `dask`
    (`REACTOR_DASK_ADDRESS` of a running scheduler, else a local cluster)."""
    settings = settings or get_settings()
    if settings.task_runner == "dask":
        from prefect_dask import DaskTaskRunner

        if settings.dask_address:
            return DaskTaskRunner(address=settings.dask_address)
        return DaskTaskRunner(cluster_kwargs={"n_workers": 2, "threads_per_worker": 2})
    return ThreadPoolTaskRunner(max_workers=settings.max_workers)


def unpersisted_results() -> dict[str, Any]:
    """The `@flow` options of a flow whose own result is not persisted (`resumable()` in
    `tasks/resume.py` is the persisted counterpart): persistence off and the project's result
    storage, both stated on the decorator.

    Left unset, Prefect 3.9.1 asks the server for its default result storage at every flow run,
    twice (a sync and an async `GET /api/admin/storage`: 31 ms of an empty run on 127.0.0.1 at
    load ≈ 3-4, more on a busier machine; docs/operations.md#what-it-costs); stated, it asks
    nothing. A task that persists its own result (`persist_result=True`) writes it where
    `result_storage()` says, like the tasks of the resumable flows."""
    return {"persist_result": False, "result_storage": result_storage()}


def current_run_id() -> str:
    """The Prefect flow run id inside a flow (so exports cross-reference the UI), else a
    fresh `coord_<ns>` id."""
    from prefect.runtime import flow_run

    from tasks.ids import new_id

    run_id = flow_run.get_id()
    return str(run_id) if run_id else new_id("coord")
