"""Task-runner choice from settings: a bounded thread pool by default, Dask when asked.
Imports Prefect (edge module)."""

from __future__ import annotations

from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

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


def current_run_id() -> str:
    """The Prefect flow run id inside a flow (so exports cross-reference the UI), else a
    fresh `coord_<ns>` id."""
    from prefect.runtime import flow_run

    from tasks.ids import new_id

    run_id = flow_run.get_id()
    return str(run_id) if run_id else new_id("coord")
