"""`reactor spr batch` runs the flow and prints its result as JSON."""

import json
import shutil
from pathlib import Path

from typer.testing import CliRunner

from reactor.cli import app

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "spr"


def test_batch_json_prints_the_flow_result_and_exports_requested_formats(tmp_path, reactor_env):
    docs = tmp_path / "docs"
    shutil.copytree(SAMPLES, docs)
    (docs / "empty.txt").write_text("")
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app,
        [
            "spr", "batch", str(docs), "--target-ratio", "0.2", "--formats", "standard",
            "--export-formats", "json,csv", "--out", str(out), "--json",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["processed"] == 5 and data["failed"] == 1
    errors = {d["document_id"]: d["error"] for d in data["documents"]}
    assert "is empty" in errors["empty.txt"]
    assert sorted(f["format"] for f in data["export"]["files"]) == ["csv", "json"]
    assert all(Path(f["path"]).is_relative_to(out) for f in data["export"]["files"])
    standard = [f for d in data["documents"] for f in d["formats"]]
    assert all(f["requested_ratio"] == 0.2 for f in standard)
