"""The dataset exporter: four formats, one frame; manifest hashes match the files."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime

import pandas as pd
import pyarrow.parquet as pq
import pytest

from tasks.errors import InvalidInput
from tasks.export import ALL_FORMATS, Column, export_dataset, read_export

SCHEMA = {
    "document_id": Column.str,
    "original_words": Column.int,
    "quality": Column.float,
    "passed": Column.bool,
    "created_at": Column.timestamp,
    "components": Column.json,
    "note": Column.str,
}


def _records(n: int = 5) -> list[dict]:
    return [
        {
            "document_id": f"doc-{i}",
            "original_words": 1000 + i,
            "quality": 0.5 + i / 10,
            "passed": i % 2 == 0,
            "created_at": datetime(2026, 11, 23, 12, i, 30, 123456, tzinfo=UTC),
            "components": {"recall": i / 10, "tags": ["a", "b, c", 'quote "x"']},
            "note": 'comma, "quotes" and\nnewline',
        }
        for i in range(n)
    ]


def test_four_formats_read_back_to_the_same_frame(tmp_path):
    result = export_dataset(_records(), "spr_results", "run_1", SCHEMA, root=tmp_path)
    frames = {f.format: read_export(f.path) for f in result.files}
    assert set(frames) == set(ALL_FORMATS)
    reference = frames["parquet"]
    assert str(reference["original_words"].dtype) == "Int64"
    assert str(reference["created_at"].dtype) == "datetime64[us, UTC]"
    assert reference.loc[2, "components"] == {"recall": 0.2, "tags": ["a", "b, c", 'quote "x"']}
    for fmt, frame in frames.items():
        pd.testing.assert_frame_equal(frame, reference, obj=fmt)


def test_layout_and_manifest_hashes_match_files(tmp_path):
    result = export_dataset(
        _records(3), "assignments", "run_9", SCHEMA, root=tmp_path, day=date(2026, 11, 23)
    )
    assert result.directory == tmp_path / "assignments" / "2026-11-23"
    manifest = json.loads(result.manifest.read_text())
    run = manifest["runs"]["run_9"]
    assert run["rows"] == 3 and run["schema"]["created_at"] == "timestamp"
    for fmt, entry in run["files"].items():
        data = (result.directory / entry["file"]).read_bytes()
        assert entry["file"] == f"run_9.{fmt}"
        assert hashlib.sha256(data).hexdigest() == entry["sha256"]


def test_parquet_schema_is_explicit(tmp_path):
    result = export_dataset(_records(2), "d", "r", SCHEMA, formats=["parquet"], root=tmp_path)
    schema = pq.read_schema(result.files[0].path)
    assert str(schema.field("original_words").type) == "int64"
    assert str(schema.field("created_at").type) == "timestamp[us, tz=UTC]"
    assert str(schema.field("passed").type) == "bool"


def test_csv_is_quoted_and_nested_fields_are_json_strings(tmp_path):
    result = export_dataset(_records(1), "d", "r", SCHEMA, formats=["csv"], root=tmp_path)
    text = result.files[0].path.read_text()
    assert '"doc-0"' in text
    row = pd.read_csv(result.files[0].path)
    assert json.loads(row.loc[0, "components"])["tags"][1] == "b, c"


def test_two_runs_share_a_manifest(tmp_path):
    export_dataset(_records(1), "d", "a", SCHEMA, root=tmp_path, day=date(2026, 1, 1))
    r = export_dataset(_records(2), "d", "b", SCHEMA, root=tmp_path, day=date(2026, 1, 1))
    assert set(json.loads(r.manifest.read_text())["runs"]) == {"a", "b"}


def test_a_failing_format_leaves_no_partial_run(tmp_path, monkeypatch):
    import tasks.export as export

    real_render = export.render

    def render(frame, schema, fmt):
        if fmt == "parquet":
            raise OSError("disk full")
        return real_render(frame, schema, fmt)

    monkeypatch.setattr(export, "render", render)
    with pytest.raises(OSError):
        export_dataset(_records(2), "d", "r", SCHEMA, root=tmp_path)
    leftovers = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert leftovers == []


def test_bad_arguments_are_named(tmp_path):
    with pytest.raises(InvalidInput, match="xml"):
        export_dataset(_records(1), "d", "r", SCHEMA, formats=["xml"], root=tmp_path)
    with pytest.raises(InvalidInput, match="run_id"):
        export_dataset(_records(1), "d", "../escape", SCHEMA, root=tmp_path)
    with pytest.raises(InvalidInput, match="note"):
        export_dataset([{"document_id": "x"}], "d", "r", {"note": Column.str}, root=tmp_path)
