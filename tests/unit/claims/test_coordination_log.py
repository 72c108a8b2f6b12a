"""The coordination log is append-only (JSON Lines embedded, a table on PostgreSQL), still
reads the older JSON array, and records an idempotency key once."""

from __future__ import annotations

import json

from tasks.coordination_log import LOG_FILE, append_entries, idempotency_key, read_log
from tasks.jsonl import append_jsonl


def test_entries_are_appended_not_rewritten(reactor_env):
    append_entries([{"work_item_id": "w1", "scenario": "swarm"}], reactor_env)
    path = reactor_env.coordination_dir / LOG_FILE
    inode, before = path.stat().st_ino, path.read_bytes()
    assert append_entries([{"work_item_id": "w2"}], reactor_env) == 2
    assert path.stat().st_ino == inode  # the same file, grown: not a rewrite
    assert path.read_bytes().startswith(before)
    assert [e["work_item_id"] for e in read_log(reactor_env)] == ["w1", "w2"]


def test_an_older_json_array_log_is_still_read(reactor_env):
    legacy = reactor_env.coordination_dir / "coordination_log.json"
    legacy.parent.mkdir(parents=True)
    legacy.write_text(json.dumps([{"work_item_id": "old-1"}, {"work_item_id": "old-2"}]))
    assert append_entries([{"work_item_id": "new"}], reactor_env) == 3
    assert [e["work_item_id"] for e in read_log(reactor_env)] == ["old-1", "old-2", "new"]
    assert json.loads(legacy.read_text())[1] == {"work_item_id": "old-2"}  # untouched


def test_an_idempotency_key_is_recorded_once(ledger_settings):
    key = idempotency_key("swarm", "run_1", "w1")
    entry = {"work_item_id": "w1", "idempotency_key": key}
    assert append_entries([entry, entry], ledger_settings) == 1
    assert append_entries([entry, {"work_item_id": "w2"}], ledger_settings) == 2  # a retry
    log = read_log(ledger_settings)
    assert [e["work_item_id"] for e in log] == ["w1", "w2"]
    assert log[0]["idempotency_key"] == "swarm:run_1:w1" and "logged_at" in log[0]


def test_lines_of_a_writer_that_died_are_counted_and_a_torn_line_cut(reactor_env):
    append_entries([{"n": 1, "idempotency_key": "k1"}], reactor_env)
    path = reactor_env.coordination_dir / LOG_FILE
    append_jsonl(path, [{"n": 2, "idempotency_key": "k2"}])  # appended, index not updated
    with open(path, "a") as fh:
        fh.write('{"n": 3, "idem')  # killed mid-write
    assert append_entries([{"n": 2, "idempotency_key": "k2"}, {"n": 4}], reactor_env) == 3
    assert [e["n"] for e in read_log(reactor_env)] == [1, 2, 4]


def test_complete_many_logs_its_entries_with_its_completions_on_both_backends(
    ledger, ledger_settings
):
    from tasks.claims import WorkItem

    ledger.add([WorkItem(work_item_id="a"), WorkItem(work_item_id="b")])
    held = ledger.claim_many("agent_a", 2)
    entries = [{"work_item_id": c.work_item_id, "by": "agent_a"} for c in held]
    ledger.complete_many([(c.work_item_id, c.claim_id, None) for c in held], entries)
    assert [e["work_item_id"] for e in read_log(ledger_settings)] == ["a", "b"]
    assert ledger.counts() == {"completed": 2}
