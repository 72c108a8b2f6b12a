"""The queue's producer side and the drain's ledger steps, without a flow: what `claims add`
and `enqueue` refuse (one line, nothing added), what a drain request must say, and how a taken
selection becomes tasks, is handed to agents and given back — on both ledger backends."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from reactor.cli import app
from tasks.errors import InvalidInput
from tasks.swarm.models import QueueSelection, SwarmRequest
from tasks.swarm.queue import draining
from tasks.swarm.queue.enqueue import enqueue
from tests.unit.swarm.plans import one_agent_plan


def _add(where, *args: str):
    return CliRunner().invoke(app, ["claims", "add", *args, "--coordination-dir", str(where)])


def _count(where) -> int:
    listed = CliRunner().invoke(app, ["claims", "list", "--json", "--coordination-dir", str(where)])
    return len(json.loads(listed.stdout))


def test_claims_add_takes_every_queue_field_and_prints_the_item(tmp_path):
    first = _add(tmp_path, "analysis", "first", "--id", "a1")
    assert first.exit_code == 0 and first.stdout.strip() == "a1"
    done = _add(
        tmp_path, "analysis", "second", "--id", "a2", "--priority", "critical",
        "--payload", '{"values": [1, 2]}', "--duration-ms", "250", "--depends-on", "a1",
        "--json",
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    item = json.loads(done.stdout)
    assert (item["work_item_id"], item["priority"], item["estimated_duration"]) == (
        "a2",
        "critical",
        250,
    )
    assert (item["payload"], item["dependencies"], item["status"]) == (
        {"values": [1, 2]},
        ["a1"],
        "pending",
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["analysis", "x", "--depends-on", "nowhere"], "depends on unknown work item 'nowhere'"),
        (["analysis", "x", "--id", "a1"], "already in the ledger: ['a1']"),
        (["analysis", "x", "--payload", "[1, 2]"], "payload: Input should be a valid dictionary"),
        (["analysis", "x", "--payload", "{nope"], "--payload is not JSON"),
        (["spr.batch", "x", "--payload", "{}"], "work item"),
        (["trace.check", "x", "--payload", '{"systems": []}'], "payload.systems"),
    ],
)
def test_claims_add_refuses_bad_items_in_one_line_and_adds_nothing(tmp_path, args, message):
    assert _add(tmp_path, "analysis", "first", "--id", "a1").exit_code == 0
    done = _add(tmp_path, *args)
    assert done.exit_code == 2, done.output
    lines = [line for line in done.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
    assert _count(tmp_path) == 1


def test_enqueue_refuses_a_cycle_naming_it_and_adds_nothing(reactor_env):
    items = [
        {"work_item_id": "a", "dependencies": ["c"]},
        {"work_item_id": "b", "dependencies": ["a"]},
        {"work_item_id": "c", "dependencies": ["b"]},
    ]
    with pytest.raises(InvalidInput, match=r"cycle: .*a.*"):
        enqueue(items, reactor_env)
    with pytest.raises(InvalidInput, match=r"spr\.batch.*nothing was added"):
        enqueue([{"work_item_id": "ok"}, {"work_type": "spr.batch", "payload": {}}], reactor_env)
    from tasks.claims import open_ledger

    with open_ledger(reactor_env) as ledger:
        assert ledger.counts() == {}


def test_a_request_is_inline_or_a_drain_and_drains_only_handled_types():
    task = {"id": "t", "type": "analysis", "estimated_duration_ms": 10}
    with pytest.raises(ValueError, match="not neither"):
        SwarmRequest.model_validate({})
    with pytest.raises(ValueError, match="not both"):
        SwarmRequest.model_validate({"tasks": [task], "queue": {}})
    with pytest.raises(ValueError, match=r"queue.types \['mystery'\] have no handler"):
        SwarmRequest.model_validate({"queue": {"types": ["mystery"]}})
    drain = SwarmRequest.model_validate({"queue": {"limit": 3}})
    assert {"analysis", "spr.batch", "trace.check", "worktree.health"} <= set(drain.handled_types())


def test_a_taken_selection_becomes_tasks_with_its_inner_dependencies(ledger):
    ledger.add([{"work_item_id": "done-before"}])
    held = ledger.claim("done-before", "someone")
    ledger.complete("done-before", held.claim_id, {"rows": 1})
    ledger.add(
        [
            {"work_item_id": "base", "priority": "low", "estimated_duration": 0},
            {
                "work_item_id": "top",
                "priority": "critical",
                "dependencies": ["base", "done-before"],
            },
            {"work_item_id": "other-type", "work_type": "mystery"},
        ]
    )
    request = SwarmRequest(queue=QueueSelection(limit=5, timeout_s=42))
    batch = draining.take(ledger, request, "run-1")
    tasks = {t.id: t for t in batch.request.tasks}
    assert list(tasks) == ["base", "top"]  # dependencies first; the unhandled type stays queued
    assert tasks["top"].dependencies == ["base"]  # done-before is completed: not planned
    assert batch.dependencies["top"] == ["base", "done-before"]  # its result is an input
    assert (
        tasks["base"].estimated_duration_ms,
        tasks["base"].timeout_s,
        tasks["base"].retries,
    ) == (1.0, 42, 0)
    assert batch.depth_before == 3
    deps = draining.dependency_items(batch, tasks["top"], {"base": "base"})
    assert deps == {"base": "base", "done-before": "done-before"}

    plan = draining.assign(
        ledger, one_agent_plan("agent_x", [t.id for t in batch.request.tasks]), batch
    )
    assert all(a.from_queue and a.claim_id == batch.claims[a.task_id] for a in plan.assignments)
    assert ledger.get("base").agent_id == "agent_x"
    ledger.complete("base", batch.claims["base"], None)
    # the undo gives back only what is still held under the run's tokens
    assert draining.release_held(ledger, batch.claims) == 1
    assert ledger.get("top").status == "pending" and ledger.get("top").attempts == 0
    assert ledger.get("base").status == "completed"
