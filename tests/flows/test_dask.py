"""Scale-out: the SPR flow on a dask.distributed LocalCluster through REACTOR_TASK_RUNNER=dask."""

from __future__ import annotations

import asyncio

from flows.spr_pipeline import sample_request, spr_pipeline
from tasks.runtime import task_runner
from tasks.settings import Settings


def test_spr_flow_runs_its_tasks_on_a_dask_local_cluster(reactor_env):
    from distributed import Client, LocalCluster, get_task_stream  # here: 0.5 s at collection

    with (
        # one worker process: the tasks still leave this process for the cluster's, and each
        # further worker is one more interpreter importing Prefect and the flow
        LocalCluster(
            n_workers=1, threads_per_worker=2, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        runner = task_runner(Settings(task_runner="dask", dask_address=cluster.scheduler_address))
        assert type(runner).__name__ == "DaskTaskRunner"
        with get_task_stream(client) as stream:
            flow = spr_pipeline.with_options(task_runner=runner)
            request = sample_request(export_formats=["parquet"], write_spr_files=False)
            result = asyncio.run(flow(request))
        ran_on = {record["worker"] for record in stream.data}
        cluster_workers = set(client.scheduler_info()["workers"])
    assert result.processed >= 5 and result.failed == 0
    assert len(stream.data) >= 3, "the flow's tasks ran as Dask tasks"
    assert ran_on and ran_on <= cluster_workers
