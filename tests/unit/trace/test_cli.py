"""`reactor trace run` rejects bad input with one clear line and a non-zero exit, before any
system is called."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from reactor.cli import app
from tasks.trace.standins import run_standins


@pytest.fixture(scope="module")
def standins():
    with run_standins() as running:
        yield running


def systems(url, **overrides):
    base = [
        {"name": "a", "type": "phoenix", "url": f"{url}/a"},
        {"name": "b", "type": "n8n", "url": f"{url}/b", "depends_on": ["a"]},
    ]
    for name, fields in overrides.items():
        next(s for s in base if s["name"] == name).update(fields)
    return base


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"b": {"url": "http//nohost"}},
            "systems.1.url: url 'http//nohost' is malformed",
        ),
        ({"b": {"name": "a", "depends_on": []}}, "duplicate system names ['a']"),
        ({"a": {"depends_on": ["b"]}}, "system cycle: a -> b -> a"),
        (
            {"a": {"timeout_s": -3}},
            "systems.0.timeout_s: timeout_s -3.0 must be a positive",
        ),
    ],
)
def test_bad_input_is_a_clear_error_before_any_call(standins, tmp_path, change, message):
    path = tmp_path / "systems.json"
    path.write_text(
        json.dumps({"workflow_id": "wf", "systems": systems(standins.base_url, **change)})
    )
    out = CliRunner().invoke(app, ["trace", "run", str(path)])
    assert out.exit_code == 2
    assert out.stderr.startswith("error: ") and message in out.stderr
    assert standins.received() == []


def test_missing_file_is_a_clear_error(tmp_path):
    out = CliRunner().invoke(app, ["trace", "run", str(tmp_path / "nope.json")])
    assert out.exit_code != 0 and "no such file" in out.stderr
