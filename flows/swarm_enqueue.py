"""Producers enqueue work for the swarm through Prefect's API: `run_deployment("swarm-enqueue/
swarm-enqueue", parameters={"request": {"items": [...]}})` adds the items to the ledger's queue
(all or none; docs/swarm.md, "The queue"), where the next drain run picks them up. The same as
`reactor claims add` or `tasks.swarm.queue.enqueue.enqueue` from Python.
"""

from __future__ import annotations

import asyncio
import sys

from tasks.claims import open_ledger
from tasks.runtime import reactor_flow
from tasks.settings import get_settings
from tasks.swarm.models import EnqueueRequest, EnqueueResult
from tasks.swarm.queue.prefect_tasks import enqueue_items


@reactor_flow("swarm-enqueue", concurrent=False)
async def swarm_enqueue(request: EnqueueRequest) -> EnqueueResult:
    ids = enqueue_items(request.items, request.source)
    with open_ledger(get_settings()) as ledger:
        depth = ledger.queue_depth()
    return EnqueueResult(work_item_ids=ids, queue_depth=depth)


if __name__ == "__main__":  # python -m flows.swarm_enqueue request.json
    with open(sys.argv[1], encoding="utf-8") as fh:
        body = EnqueueRequest.model_validate_json(fh.read())
    print(asyncio.run(swarm_enqueue(body)).model_dump_json(indent=2))
