"""`reactor claims` with stores it cannot use: one line naming the file and what to do, exit
code 2, and the file is never rewritten; an unreadable work_claims.json is kept aside."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from reactor.cli import app

GARBAGE = b"SQLite format 3\x00" + b"\x13" * 4000  # a header, then nothing a database has


def _run(*args: str):
    return CliRunner().invoke(app, ["claims", *args])


@pytest.mark.parametrize("command", [["list"], ["add", "analysis", "x"], ["claim", "agent_a"]])
def test_corrupt_claims_sqlite3_is_one_line_and_exit_2(tmp_path, command):
    db = tmp_path / "claims.sqlite3"
    db.write_bytes(GARBAGE)
    result = _run(*command, "--coordination-dir", str(tmp_path))
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"error: {db} is not a readable SQLite database")
    assert "move it aside" in line
    assert db.read_bytes() == GARBAGE  # never rewritten


def test_corrupt_work_claims_json_is_kept_aside_and_the_cli_says_so(tmp_path):
    where = ["--coordination-dir", str(tmp_path)]
    assert _run("add", "analysis", "x", *where).exit_code == 0
    assert _run("claim", "agent_a", *where).exit_code == 0
    snapshot = tmp_path / "work_claims.json"
    snapshot.write_text('[{"work_item_id": "hand-edited", ')  # cut off mid-edit
    result = _run("list", *where)
    assert result.exit_code == 0, result.output
    (kept,) = tmp_path.glob("work_claims.json.corrupt-*")
    assert kept.read_text() == '[{"work_item_id": "hand-edited", '
    assert f"kept it as {kept}" in result.stderr
    assert json.loads(snapshot.read_text())[0]["agent_id"] == "agent_a"


def test_corrupt_json_log_behind_complete_is_one_warning_and_the_completion_stands(tmp_path):
    where = ["--coordination-dir", str(tmp_path)]
    (tmp_path / "coordination_log.json").write_text("[{oops")  # an older version's log
    _run("add", "analysis", "x", "--id", "w1", *where)
    token = json.loads(_run("claim", "agent_a", "--json", *where).stdout)["claim_id"]
    result = _run("complete", "w1", token, "--json", *where)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["status"] == "completed"  # committed: the ledger says so
    (line,) = result.stderr.splitlines()
    assert line.startswith("warning: ") and "wait in" in line
    assert "coordination_log.json is not valid JSON" in line and "left untouched" in line
    assert (tmp_path / "coordination_log.json").read_text() == "[{oops"
    (tmp_path / "coordination_log.json").unlink()  # repaired: the next command logs it
    assert _run("list", *where).exit_code == 0
    lines = (tmp_path / "coordination_log.jsonl").read_text().splitlines()
    (logged,) = [json.loads(x) for x in lines]
    assert (logged["work_item_id"], logged["claim_id"]) == ("w1", token)
