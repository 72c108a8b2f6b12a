"""Producers fill the queue (pure: no Prefect): `enqueue` adds work items to the configured
ledger, all or none. On top of the ledger's own checks (duplicate id, unknown dependency,
cycle, a payload that is not a JSON object), a scenario item's payload must be the request its
flow takes (`tasks/swarm/scenarios.py`), so a bad one is refused at the door rather than
failing in every drain until it runs out of attempts."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tasks.claims import Claim, WorkItem, open_ledger
from tasks.claims.selection import NOTHING_ADDED, coerce_items
from tasks.errors import InvalidInput
from tasks.settings import Settings
from tasks.swarm.models import BUILTIN_TYPES, SCENARIO_TYPES
from tasks.swarm.scenarios import SCENARIOS, scenario_request


def validated(items: Iterable[WorkItem | dict[str, Any]]) -> list[WorkItem]:
    """WorkItems, each scenario item's payload checked; the first problem is one line."""
    out = coerce_items(items)
    for item in out:
        if item.work_type in SCENARIOS:
            try:
                scenario_request(item.work_type, item.payload, item.work_item_id)
            except InvalidInput as exc:
                raise InvalidInput(f"{exc}; {NOTHING_ADDED}") from None
    return out


def unhandled_types(types: Iterable[str]) -> list[str]:
    """The work types no drain runs without a handler of its own (`SwarmRequest.handlers`):
    neither a built-in nor a scenario type."""
    return sorted({*types} - {*BUILTIN_TYPES, *SCENARIO_TYPES})


def enqueue(
    items: Iterable[WorkItem | dict[str, Any]], settings: Settings | None = None
) -> list[Claim]:
    """Add the items to the configured ledger's queue (all or none); the items as stored."""
    checked = validated(items)
    with open_ledger(settings) as ledger:
        ids = ledger.add(checked)
        return [ledger.get(i) for i in ids]
