"""What a resumed swarm run (same run id) does with its dead attempt's work, step by step and
on both ledger backends: the same agents, its claims taken back under their tokens, a drain's
batch taken back instead of a new one, an item completed under its claim not run again (and
logged once), an item lost to another holder skipped naming the holder."""

from __future__ import annotations

from tasks.claims import open_ledger
from tasks.coordination_log import read_log
from tasks.jsonl import read_jsonl
from tasks.swarm import agents as registry
from tasks.swarm import claiming
from tasks.swarm.execution import ItemJob, execute_item
from tasks.swarm.models import (
    AgentSpec,
    Assignment,
    HandlerSpec,
    QueueSelection,
    SwarmRequest,
    SwarmTask,
)
from tasks.swarm.queue import draining
from tests.unit.swarm.plans import one_agent_plan

RECORD = {"crash.record": HandlerSpec(kind="python", target="tests.flows.two_host_handler:record")}


def _request(log, *ids: str) -> SwarmRequest:
    return SwarmRequest(
        tasks=[
            SwarmTask(
                id=i,
                type="crash.record",
                estimated_duration_ms=10,
                retries=0,
                payload={"item": i, "log": str(log), "sleep_s": 0},
            )
            for i in ids
        ],
        handlers=RECORD,
    )


def test_a_resumed_run_keeps_the_agents_its_dead_attempt_registered(ledger_settings):
    specs = [AgentSpec(name="a"), AgentSpec(name="b")]
    first = registry.form_agents(specs)
    registry.register(first, ledger_settings, 60.0, "run-1")
    registry.register(registry.form_agents(specs), ledger_settings, 60.0, "run-2")
    earlier = registry.agents_of_run("run-1", ledger_settings)
    again = registry.form_agents(specs, earlier)
    assert [a.agent_id for a in again] == [a.agent_id for a in first]


def test_claiming_again_for_the_same_run_takes_back_its_claims_under_their_tokens(
    ledger_settings, tmp_path
):
    request, ids = _request(tmp_path / "h.jsonl", "t1", "t2", "t3"), ("t1", "t2", "t3")
    plan = claiming.with_work_items(one_agent_plan("agent_a", ids), "run-1")
    with open_ledger(ledger_settings) as ledger:
        first, report = claiming.claim_for_run(ledger, request, plan, "run-1")
        assert report is None  # nothing of this run was there: a first attempt
        done = first.assignments[0]
        ledger.complete(done.work_item_id, done.claim_id, {"ok": True})
        again, report = claiming.claim_for_run(
            ledger,
            request,
            claiming.with_work_items(one_agent_plan("agent_a", ids), "run-1"),
            "run-1",
        )
        assert [a.claim_id for a in again.assignments] == [a.claim_id for a in first.assignments]
        assert report.finished == {done.work_item_id: "completed"}
        assert report.taken_back == [a.work_item_id for a in first.assignments[1:]]
        assert report.fresh == 0 and not report.lost
        assert {ledger.get(a.work_item_id).claims for a in again.assignments} == {1}
        assert len(ledger.list()) == 3  # no new items


def test_an_item_completed_under_its_claim_is_not_run_again_and_is_logged_once(
    ledger_settings, tmp_path
):
    """The kill came right after the ledger's commit: the completion is the result, and its
    log entry (which the embedded ledger appends after the commit) is appended now, once."""
    log = tmp_path / "h.jsonl"
    request = _request(log, "t1")
    plan = claiming.with_work_items(one_agent_plan("agent_a", ["t1"]), "run-1")
    with open_ledger(ledger_settings) as ledger:
        plan, _ = claiming.claim_for_run(ledger, request, plan, "run-1")
        (a,) = plan.assignments
        ledger.complete(a.work_item_id, a.claim_id, {"execution": "dead-attempt"})  # no log
        job = ItemJob(
            task=request.tasks[0], assignment=a, run_id="run-1", lease_s=30, handlers=RECORD
        )
        records = [execute_item(ledger, ledger_settings, job) for _ in range(2)]
    assert not read_jsonl(log), "the handler ran again"
    for r in records:
        assert (r.status, r.resumed, r.attempts) == ("completed", True, 0)
        assert r.result == {"execution": "dead-attempt"}
    entries = [e for e in read_log(ledger_settings) if e.get("run_id") == "run-1"]
    assert [e["work_item_id"] for e in entries] == [a.work_item_id]


def test_an_item_whose_claim_was_lost_is_skipped_naming_its_holder(ledger_settings, tmp_path):
    log = tmp_path / "h.jsonl"
    request = _request(log, "t1")
    with open_ledger(ledger_settings) as ledger:
        ledger.add(
            claiming.work_items(
                request, claiming.with_work_items(one_agent_plan("a", ["t1"]), "r"), "r"
            )
        )
        wid = claiming.work_item_id("r", "t1")
        old = ledger.claim(wid, "agent_a")
        # lost: given back and taken by another agent (a lapse would fail this one-attempt
        # item for good instead)
        ledger.release(wid, old.claim_id)
        new = ledger.claim_next("agent_b")
        a = Assignment(
            task_id="t1",
            work_item_id=wid,
            claim_id=old.claim_id,
            agent_id="agent_a",
            slot=0,
            planned_start_ms=0,
            planned_finish_ms=1,
            order=0,
        )
        job = ItemJob(task=request.tasks[0], assignment=a, run_id="r", lease_s=30, handlers=RECORD)
        record = execute_item(ledger, ledger_settings, job)
    assert record.status == "skipped" and not read_jsonl(log)
    assert f"claim lost, the item is claimed under claim {new.claim_id} by agent_b" in record.error


def test_a_resumed_drain_takes_back_its_batch_instead_of_taking_more(ledger_settings):
    request = SwarmRequest(queue=QueueSelection(limit=2))
    with open_ledger(ledger_settings) as ledger:
        ledger.add([{"work_item_id": f"q{i}"} for i in range(4)])
        batch = draining.take(ledger, request, "run-1")
        ledger.assign("q0", batch.claims["q0"], "agent_a")
        ledger.complete("q1", batch.claims["q1"], "done")  # still under the run's id
        again = draining.take(ledger, request, "run-1", resuming=True, earlier_agents=["agent_a"])
        assert again.claims == batch.claims  # the same items under the same tokens
        assert again.resumed.taken_back == ["q0"] and again.resumed.finished == {"q1": "completed"}
        assert ledger.queue_depth() == 2  # nothing new taken
        fresh = draining.take(ledger, request, "run-2", resuming=True)
        assert sorted(fresh.claims) == ["q2", "q3"] and fresh.resumed is None
