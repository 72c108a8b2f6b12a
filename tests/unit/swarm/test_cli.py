"""`reactor claims`: the shell helper's operations, with clear errors and non-zero exits."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from reactor.cli import app


def _run(*args: str):
    return CliRunner().invoke(app, ["claims", *args])


def test_add_claim_progress_complete_list(tmp_path):
    where = ["--coordination-dir", str(tmp_path)]
    added = _run("add", "analysis", "look at metrics", "--priority", "high", "--json", *where)
    assert added.exit_code == 0, added.output
    item = json.loads(added.stdout)["work_item_id"]
    claimed = json.loads(_run("claim", "agent_cli", "--json", *where).stdout)
    assert claimed["work_item_id"] == item and claimed["status"] == "claimed"
    token = claimed["claim_id"]
    assert _run("progress", item, token, "60", *where).exit_code == 0
    done = _run("complete", item, token, "--result", '{"rows": 3}', "--json", *where)
    assert json.loads(done.stdout)["result"] == {"rows": 3}
    listed = json.loads(_run("list", "--json", *where).stdout)
    assert [c["status"] for c in listed] == ["completed"]
    log = [json.loads(line) for line in (tmp_path / "coordination_log.jsonl").open()]
    assert log[0]["work_item_id"] == item and log[0]["agent_id"] == "agent_cli"
    assert json.loads((tmp_path / "work_claims.json").read_text())[0]["status"] == "completed"


def test_completing_with_a_stale_claim_id_is_a_clear_error(tmp_path):
    where = ["--coordination-dir", str(tmp_path)]
    item = json.loads(_run("add", "analysis", "--json", *where).stdout)["work_item_id"]
    first = json.loads(_run("claim", "agent_a", "--json", *where).stdout)["claim_id"]
    _run("claim", "agent_a", "--id", item, *where)  # re-claimed: the first token is stale
    result = _run("complete", item, first, *where)
    assert result.exit_code != 0
    assert f"error: claim {first} on {item} is stale" in result.output


def test_nothing_to_claim_exits_non_zero(tmp_path):
    result = _run("claim", "agent_a", "--coordination-dir", str(tmp_path))
    assert result.exit_code == 1 and "nothing to claim" in result.output
