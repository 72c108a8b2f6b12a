"""A result that contains a known secret's text as a number or a key is stored as it is, on
both ledger backends (redaction works on string values, never on the serialised JSON)."""

from __future__ import annotations

from tasks.claims import WorkItem
from tasks.redaction import REDACTED


def test_a_result_shaped_like_a_secret_is_stored_intact(ledger, monkeypatch):
    monkeypatch.setenv("SERVICE_API_SECRET", "20242024")
    ledger.add([WorkItem(work_item_id="w", priority="high")])
    claim = ledger.claim("w", "agent_a")
    result = {"year": 20242024, "20242024": "key", "note": "pin 20242024"}
    ledger.complete("w", claim.claim_id, result)
    assert ledger.get("w").result == {**result, "note": f"pin {REDACTED}"}
