"""Teardown: stop every registered service (or the named ones), remove their worktrees and the
branches deployments created, prune, release ports and registry entries — nothing left behind.
A worktree holding uncommitted files or commits no other branch has is never removed silently:
the whole teardown is refused, naming what would be lost, unless `force=True`."""

from __future__ import annotations

from pathlib import Path

from prefect import get_run_logger
from prefect.context import SyncClientContext
from prefect.futures import wait

from tasks.runtime import reactor_flow
from tasks.worktree.errors import UnsavedWorkError
from tasks.worktree.gitops import prune
from tasks.worktree.models import TeardownRequest, TeardownResult
from tasks.worktree.prefect_tasks import find_unsaved_work, teardown_one
from tasks.worktree.publish import publish_teardown
from tasks.worktree.registry import open_registry
from tasks.worktree.teardown import select


@reactor_flow("worktree-teardown")
async def worktree_teardown(request: TeardownRequest | None = None) -> TeardownResult:
    # one sync API client for every task (each would open its own: docs/worktree.md)
    with SyncClientContext.get_or_create():
        return _teardown(request or TeardownRequest())


def _teardown(request: TeardownRequest) -> TeardownResult:
    logger = get_run_logger()
    envs = open_registry().environments()
    names = select(envs, request.names, request.repo_path)
    repo = Path(request.repo_path).resolve() if request.repo_path else None
    logger.info("tearing down %d environment(s): %s", len(names), names)
    unsaved = find_unsaved_work(names)
    for u in unsaved:
        logger.warning("%s: %s", "discarding (force)" if request.force else "refusing", u.line())
    if unsaved and not request.force:
        publish_teardown(None, unsaved)
        raise UnsavedWorkError(unsaved)
    futures = [teardown_one.submit(name) for name in names]
    wait(futures)
    items = [f.result() for f in futures]
    repos = {envs[n].repo_path for n in names if envs[n].repo_path} | ({repo} if repo else set())
    pruned = []
    for path in sorted(str(p) for p in repos):
        if Path(path).exists():
            prune(Path(path))
            pruned.append(path)
            logger.info("pruned git's worktree records in %s", path)
    result = TeardownResult(items=items, pruned=pruned, forced=[u.name for u in unsaved])
    publish_teardown(result, unsaved)
    return result


if __name__ == "__main__":
    import asyncio

    print(asyncio.run(worktree_teardown(TeardownRequest())).model_dump_json(indent=2))
