"""The demo end to end against the session's server: every scenario's runs are Completed with
artifacts as the server's API reports them, and nothing is left running."""

from __future__ import annotations

import io

import psutil
from prefect.settings import PREFECT_API_URL
from rich.console import Console

from deployments.demo import demo


def test_demo_runs_all_four_scenarios_and_verifies_them_through_the_api(
    reactor_env, monkeypatch, tmp_path, capsys
):
    monkeypatch.setenv("PREFECT_API_URL", PREFECT_API_URL.value())  # reuse, do not start one
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    children_before = {p.pid for p in psutil.Process().children(recursive=True)}

    code = demo(console=Console(file=out, width=200))

    text = out.getvalue()
    assert code == 0, text
    # it said which server it used, in one line on stderr
    said = [line for line in capsys.readouterr().err.splitlines() if "Prefect server:" in line]
    assert said == [f"Prefect server: PREFECT_API_URL, {PREFECT_API_URL.value()}"]
    for scenario in ("SPR pipeline", "swarm coordination", "trace orchestration", "worktree"):
        assert scenario in text
    assert text.count("Completed") >= 6 and "Failed" not in text
    assert "artifacts" in text and "0 artifacts" not in text
    leftovers = {p.pid for p in psutil.Process().children(recursive=True)} - children_before
    assert not leftovers, f"processes left running: {leftovers}"
    assert list(reactor_env.exports_dir.glob("parquet/*/date=*/*.parquet"))
