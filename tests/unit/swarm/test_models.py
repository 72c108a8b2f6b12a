"""Bad swarm input is rejected with a clear error before anything is claimed."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from reactor.cli import app
from tasks.swarm.models import SwarmRequest


def _request(*tasks: dict) -> dict:
    return {"tasks": [{"type": "analysis", "estimated_duration_ms": 100, **t} for t in tasks]}


def test_duplicate_ids_are_named():
    with pytest.raises(ValidationError, match="duplicate task ids: 'a'"):
        SwarmRequest.model_validate(_request({"id": "a"}, {"id": "a"}, {"id": "b"}))


def test_unknown_dependency_is_named():
    with pytest.raises(ValidationError, match="'a' depends on unknown task 'ghost'"):
        SwarmRequest.model_validate(_request({"id": "a", "dependencies": ["ghost"]}))


def test_cycle_is_named_in_error():
    bad = _request(
        {"id": "a", "dependencies": ["c"]},
        {"id": "b", "dependencies": ["a"]},
        {"id": "c", "dependencies": ["b"]},
    )
    with pytest.raises(ValidationError, match=r"task cycle: (\w) -> \w -> \w -> \1"):
        SwarmRequest.model_validate(bad)


@pytest.mark.parametrize("duration", [0, -5])
def test_non_positive_durations_are_rejected(duration):
    with pytest.raises(
        ValidationError, match=f"estimated_duration_ms {float(duration)} must be a positive"
    ):
        SwarmRequest.model_validate(_request({"id": "a", "estimated_duration_ms": duration}))


def test_unregistered_type_names_the_valid_ones():
    with pytest.raises(ValidationError, match=r"'translation'.*handlers"):
        SwarmRequest.model_validate(_request({"id": "a", "type": "translation"}))


def test_cli_rejects_bad_input_and_claims_nothing(tmp_path):
    bad = tmp_path / "tasks.json"
    bad.write_text(json.dumps(_request({"id": "a", "dependencies": ["a"]})))
    coordination = tmp_path / "coordination"
    result = CliRunner().invoke(
        app, ["swarm", "run", str(bad), "--coordination-dir", str(coordination)]
    )
    assert result.exit_code == 2
    assert "error:" in result.output and "cycle" in result.output
    assert not coordination.exists()  # no ledger, no agents, no claims
