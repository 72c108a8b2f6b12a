"""`reactor claims` with bad input, on both backends: one `error:` line naming what was wrong,
a non-zero exit, no traceback and nothing changed; a work type no drain runs is refused unless
the user says a drain of theirs has a handler for it, and `claims blocked` then lists it beside
the items failed for good."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest
from typer.testing import CliRunner

from reactor.cli import app


@pytest.fixture(params=["sqlite", "postgres"])
def where(request, tmp_path, monkeypatch) -> list[str]:
    """The CLI's arguments for a ledger of this test's own on one backend."""
    if request.param == "postgres":
        monkeypatch.setenv("REACTOR_DATABASE_URL", request.getfixturevalue("pg_database"))
    return ["--coordination-dir", str(tmp_path / "coordination")]


def _run(*args: str):
    return CliRunner().invoke(app, ["claims", *args])


def _one_error(result, *facts: str) -> str:
    assert result.exit_code != 0, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: ") and "Traceback" not in result.output
    for fact in facts:
        assert fact in line
    return line


def _claimed(where: list[str]) -> tuple[str, str]:
    assert _run("add", "analysis", "x", "--id", "w1", *where).exit_code == 0
    got = json.loads(_run("claim", "agent_a", "--json", *where).stdout)
    return got["work_item_id"], got["claim_id"]


@pytest.mark.parametrize("lease", ["nan", "inf", "-inf", "0", "1e12"])
def test_claim_with_a_lease_that_is_not_finite_positive_and_bounded_is_one_line(where, lease):
    assert _run("add", "analysis", "x", "--id", "w1", *where).exit_code == 0
    _one_error(_run("claim", "agent_a", "--lease-s", lease, *where), "lease_s")
    _one_error(_run("claim", "agent_a", "--id", "w1", "--lease-s", lease, *where), "lease_s")
    listed = json.loads(_run("list", "--json", *where).stdout)
    assert [r["status"] for r in listed] == ["pending"]


def test_list_with_a_negative_limit_is_one_line(where):
    _one_error(_run("list", "--limit", "-1", *where), "limit", "-1")


@pytest.mark.parametrize("bad", ["NaN", "Infinity", "[1, -Infinity]"])
def test_complete_with_a_non_finite_result_is_one_line_and_the_item_stays_claimed(where, bad):
    wid, token = _claimed(where)
    _one_error(_run("complete", wid, token, "--result", bad, *where), "--result")
    assert json.loads(_run("list", "--json", *where).stdout)[0]["status"] == "claimed"


def test_add_with_a_duration_beyond_a_64_bit_column_is_one_line(where):
    result = _run("add", "analysis", "x", "--duration-ms", "99999999999999999999", *where)
    _one_error(result, "estimated_duration")
    assert json.loads(_run("list", "--json", *where).stdout) == []


def test_a_coordination_dir_that_is_a_regular_file_is_one_line(where, tmp_path):
    (tmp_path / "coordination").write_text("not a directory")
    _one_error(_run("list", *where), str(tmp_path / "coordination"), "not a directory")


def test_add_refuses_a_work_type_no_drain_runs_unless_told_a_handler_exists(where):
    _one_error(_run("add", "mining", "x", *where), "'mining'", "--custom-type")
    assert json.loads(_run("list", "--json", *where).stdout) == []
    assert _run("add", "mining", "x", "--id", "m1", "--custom-type", *where).exit_code == 0
    blocked = json.loads(_run("blocked", "--json", *where).stdout)
    assert blocked["waiting_for_handler"] == {"mining": 1}


def test_blocked_lists_an_item_failed_for_good_by_lapsed_leases_with_the_reason(where):
    assert _run("add", "analysis", "x", "--id", "p1", "--max-attempts", "1", *where).exit_code == 0
    got = json.loads(_run("claim", "agent_dies", "--lease-s", "0.2", "--json", *where).stdout)
    ends = datetime.fromisoformat(got["lease_expires_at"])
    deadline = time.monotonic() + 30
    while datetime.now(UTC) <= ends:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert _run("claim", "agent_b", *where).exit_code == 1  # nothing to claim: it is dead
    blocked = json.loads(_run("blocked", "--json", *where).stdout)
    assert list(blocked["failed"]) == ["p1"] and "agent_dies" in blocked["failed"]["p1"]
    listed = _run("list", "--status", "failed", *where)
    assert "p1" in listed.stdout and "lease expired" in listed.stdout
