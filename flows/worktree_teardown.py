"""Teardown: stop every registered service (or the named ones), remove their worktrees and the
branches deployments created, prune, release ports and registry entries — nothing left behind."""

from __future__ import annotations

from pathlib import Path

from prefect import flow
from prefect.futures import wait

from tasks.artifacts import publish_table
from tasks.runtime import task_runner
from tasks.settings import get_settings
from tasks.telemetry import configure_telemetry
from tasks.worktree.gitops import prune
from tasks.worktree.models import TeardownRequest, TeardownResult
from tasks.worktree.prefect_tasks import teardown_one
from tasks.worktree.registry import environments, registry_store


@flow(name="worktree-teardown", task_runner=task_runner(), validate_parameters=True)
def worktree_teardown(request: TeardownRequest | None = None) -> TeardownResult:
    configure_telemetry()
    request = request or TeardownRequest()
    envs = environments(registry_store(get_settings()))
    repo = str(Path(request.repo_path).resolve()) if request.repo_path else None
    names = [
        n
        for n, e in sorted(envs.items())
        if (request.names is None or n in request.names)
        and (repo is None or e.get("repo_path") == repo)
    ]
    futures = [teardown_one.submit(name) for name in names]
    wait(futures)
    items = [f.result() for f in futures]
    repos = {envs[n]["repo_path"] for n in names if envs[n].get("repo_path")} | set(
        filter(None, [repo])
    )
    pruned = []
    for path in sorted(repos):
        if Path(path).exists():
            prune(Path(path))
            pruned.append(path)
    publish_table("worktree-teardown", [i.model_dump(mode="json") for i in items], "Teardown")
    return TeardownResult(items=items, pruned=pruned)


if __name__ == "__main__":
    print(worktree_teardown(TeardownRequest()).model_dump_json(indent=2))
