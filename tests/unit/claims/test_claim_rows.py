"""The single-item path builds each `Claim` from the row the database returned, without
validation (`model_construct`): the result must equal what validation would make of the same
data, and what `get` reads back afterwards (no column missing or shifted)."""

from __future__ import annotations

from tasks.claims import Claim, WorkItem


def test_single_item_claims_equal_the_validated_model_and_the_stored_row(ledger):
    ledger.add([WorkItem(work_item_id="a", priority="high", payload={"k": [1, "x"]},
                         description="d", estimated_duration=5, team="t")])  # fmt: skip
    claimed = ledger.claim_next("agent_1", lease_s=60)
    assert claimed is not None
    assert claimed == Claim.model_validate(claimed.model_dump())
    assert claimed == ledger.get("a")
    assert (claimed.status, claimed.agent_id, claimed.payload) == (
        "claimed",
        "agent_1",
        {"k": [1, "x"]},
    )

    done = ledger.complete("a", claimed.claim_id, result={"n": 2})
    assert done == Claim.model_validate(done.model_dump())
    assert done == ledger.get("a")
    assert (done.status, done.result, done.progress, done.claim_id) == (
        "completed", {"n": 2}, 100, claimed.claim_id,
    )  # fmt: skip
