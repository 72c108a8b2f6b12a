"""`reactor spr` single-file commands (no Prefect server needed)."""

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reactor.cli import app

SAMPLES = Path(__file__).resolve().parents[3] / "samples" / "spr"
runner = CliRunner()


@pytest.fixture
def doc(tmp_path, reactor_env) -> Path:
    target = tmp_path / "postmortem.md"
    shutil.copy(SAMPLES / "incident-postmortem.md", target)
    return target


def test_compress_writes_a_valid_spr_file_and_json_result(doc):
    result = runner.invoke(app, ["spr", "compress", str(doc), "-f", "extended", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert abs(data["achieved_ratio"] - 0.3) <= 0.03
    spr = Path(data["spr_file"])
    assert spr.name == "postmortem.md.extended.spr"
    valid = runner.invoke(app, ["spr", "validate", str(spr)])
    assert valid.exit_code == 0 and "valid" in valid.stdout


def test_decompress_and_metrics_read_the_spr_file(doc):
    runner.invoke(app, ["spr", "compress", str(doc), "-f", "standard"])
    spr = doc.with_name("postmortem.md.standard.spr")
    prose = runner.invoke(app, ["spr", "decompress", str(spr)])
    assert prose.exit_code == 0 and "pool.yaml" in prose.stdout
    metrics = runner.invoke(app, ["spr", "metrics", str(spr), "--original", str(doc), "--json"])
    data = json.loads(metrics.stdout)
    assert data["outside_band"] == 0 and 0 < data["quality"]["quality"] <= 1


def test_roundtrip_reports_every_quality_component(doc):
    result = runner.invoke(app, ["spr", "roundtrip", str(doc), "--json"])
    quality = json.loads(result.stdout)["quality"]
    assert set(quality) >= {"keyphrase_recall", "specials_recall", "semantic_coverage"}


def test_tampered_spr_file_fails_validation_with_the_reason(doc):
    runner.invoke(app, ["spr", "compress", str(doc)])
    spr = doc.with_name("postmortem.md.standard.spr")
    spr.write_text(spr.read_text() + "one more statement\n")
    result = runner.invoke(app, ["spr", "validate", str(spr)])
    assert result.exit_code == 1
    assert "compressed words" in result.stderr


@pytest.mark.parametrize("ratio", ["0", "1.5"])
def test_target_ratio_outside_0_1_exits_2_with_a_clear_message(doc, ratio):
    result = runner.invoke(app, ["spr", "compress", str(doc), "--target-ratio", ratio])
    assert result.exit_code == 2
    assert "must be in (0, 1]" in result.stderr


def test_batch_rejects_a_bad_ratio_before_running_the_flow(doc):
    result = runner.invoke(app, ["spr", "batch", str(doc.parent), "--target-ratio", "2"])
    assert result.exit_code == 2
    assert "target_ratio" in result.stderr


def test_binary_file_is_a_clear_error(tmp_path, reactor_env):
    binary = tmp_path / "image.png"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff\xfe" * 20)
    result = runner.invoke(app, ["spr", "roundtrip", str(binary)])
    assert result.exit_code == 2
    assert "not UTF-8 text" in result.stderr
