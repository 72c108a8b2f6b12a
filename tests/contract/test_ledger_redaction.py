"""No known secret is stored by either ledger backend: a holder's error or result quoting a
secret is kept with `[REDACTED]` in its place, in the ledger and in `work_claims.json`."""

from __future__ import annotations

from tasks.claims import WorkItem

SECRET = "sk-live-ledger-5c1e9a7b3d"


def test_a_failed_attempts_error_is_stored_without_the_secret(ledger, monkeypatch):
    monkeypatch.setenv("UPSTREAM_API_SECRET", SECRET)
    ledger.add([WorkItem(work_item_id="leaky", max_attempts=2)])
    first = ledger.claim_next("agent_a")
    again = ledger.fail("leaky", first.claim_id, f"upstream rejected key {SECRET}")
    assert again.last_error == "upstream rejected key [REDACTED]"
    final = ledger.fail("leaky", ledger.claim_next("agent_a").claim_id, f"again {SECRET}")
    assert final.last_error == "again [REDACTED]" and final.result == {"error": "again [REDACTED]"}
    snapshot = ledger.snapshot()
    assert SECRET not in snapshot.path.read_text()


def test_a_completed_result_is_stored_without_the_secret(ledger, monkeypatch):
    monkeypatch.setenv("UPSTREAM_API_SECRET", SECRET)
    ledger.add([WorkItem(work_item_id="echo")])
    held = ledger.claim_next("agent_a")
    done = ledger.complete("echo", held.claim_id, {"echo": f"token {SECRET}", "n": 2})
    assert done.result == {"echo": "token [REDACTED]", "n": 2}
    assert ledger.get("echo").result == {"echo": "token [REDACTED]", "n": 2}
