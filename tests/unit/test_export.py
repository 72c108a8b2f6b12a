"""The dataset exporter: four formats, one frame; one hive-partitioned folder of data files per
dataset and format; manifests outside the data folders, their hashes matching the files."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime
from typing import Any, Literal

import pandas as pd
import pyarrow.parquet as pq
import pytest
from pydantic import BaseModel

from tasks.errors import InvalidInput
from tasks.export import (
    ALL_FORMATS,
    Column,
    export_dataset,
    read_export,
    read_manifest,
    schema_of,
)


class Doc(BaseModel):
    document_id: str
    original_words: int
    quality: float
    passed: bool
    created_at: datetime
    components: dict[str, Any]
    note: str


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
    result = export_dataset(_records(), "spr_results", "run_1", Doc, root=tmp_path)
    frames = {f.format: read_export(f.path) for f in result.files}
    assert set(frames) == set(ALL_FORMATS)
    reference = frames["parquet"]
    assert str(reference["original_words"].dtype) == "Int64"
    assert str(reference["created_at"].dtype) == "datetime64[us, UTC]"
    assert reference.loc[2, "components"] == {"recall": 0.2, "tags": ["a", "b, c", 'quote "x"']}
    for fmt, frame in frames.items():
        pd.testing.assert_frame_equal(frame, reference, obj=fmt)


def test_each_format_is_a_hive_partitioned_folder_of_data_files(tmp_path):
    result = export_dataset(
        _records(3), "assignments", "run_9", Doc, root=tmp_path, day=date(2026, 11, 23)
    )
    for fmt in ALL_FORMATS:
        folder = tmp_path / fmt / "assignments"
        assert result.datasets[fmt] == folder
        assert [p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()] == [
            f"date=2026-11-23/run_9.{fmt}"
        ]
    assert result.manifest == tmp_path / "_manifests/assignments/date=2026-11-23/run_9.json"
    assert not [p for p in tmp_path.rglob("*") if p.is_file() and "lock" in p.name]


def test_manifest_hashes_match_files(tmp_path):
    result = export_dataset(
        _records(3), "assignments", "run_9", Doc, root=tmp_path, day=date(2026, 11, 23)
    )
    manifest = json.loads(result.manifest.read_text())
    assert manifest["rows"] == 3 and manifest["schema"]["created_at"] == "timestamp"
    assert manifest["run_id"] == "run_9" and manifest["date"] == "2026-11-23"
    for fmt, entry in manifest["files"].items():
        data = (tmp_path / entry["file"]).read_bytes()
        assert entry["file"] == f"{fmt}/assignments/date=2026-11-23/run_9.{fmt}"
        assert hashlib.sha256(data).hexdigest() == entry["sha256"]
    assert read_manifest(result.files[0].path) == manifest


def test_parquet_schema_is_explicit(tmp_path):
    result = export_dataset(_records(2), "d", "r", Doc, formats=["parquet"], root=tmp_path)
    schema = pq.read_schema(result.files[0].path)
    assert str(schema.field("original_words").type) == "int64"
    assert str(schema.field("created_at").type) == "timestamp[us, tz=UTC]"
    assert str(schema.field("passed").type) == "bool"


def test_csv_is_quoted_and_nested_fields_are_json_strings(tmp_path):
    result = export_dataset(_records(1), "d", "r", Doc, formats=["csv"], root=tmp_path)
    text = result.files[0].path.read_text()
    assert '"doc-0"' in text
    row = pd.read_csv(result.files[0].path)
    assert json.loads(row.loc[0, "components"])["tags"][1] == "b, c"


def test_two_runs_of_a_day_read_as_one_table(tmp_path):
    export_dataset(_records(1), "d", "a", Doc, root=tmp_path, day=date(2026, 1, 1))
    export_dataset(_records(2), "d", "b", Doc, root=tmp_path, day=date(2026, 1, 1))
    export_dataset(_records(3), "d", "c", Doc, root=tmp_path, day=date(2026, 1, 2))
    frame = pd.read_parquet(tmp_path / "parquet" / "d")
    assert len(frame) == 6
    assert sorted(frame["date"].astype(str).unique()) == ["2026-01-01", "2026-01-02"]
    assert str(frame["original_words"].dtype) == "Int64"


def test_a_failing_format_leaves_no_partial_run(tmp_path, monkeypatch):
    import tasks.export as export

    real_render = export.render

    def render(frame, schema, fmt):
        if fmt == "parquet":
            raise OSError("disk full")
        return real_render(frame, schema, fmt)

    monkeypatch.setattr(export, "render", render)
    with pytest.raises(OSError):
        export_dataset(_records(2), "d", "r", Doc, root=tmp_path)
    leftovers = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert leftovers == []


def test_a_failure_after_the_first_file_leaves_no_data_file_and_no_manifest(tmp_path, monkeypatch):
    from tasks.storage import Storage

    real_put, placed = Storage.put, []

    def put(self, location, data):
        if placed:
            raise OSError("disk full")
        placed.append(location)
        real_put(self, location, data)

    monkeypatch.setattr(Storage, "put", put)
    with pytest.raises(OSError):
        export_dataset(_records(2), "d", "r", Doc, root=tmp_path)
    assert placed, "the first file was placed before the failure"
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_a_committed_run_is_not_written_again(tmp_path):
    first = export_dataset(_records(2), "d", "r", Doc, root=tmp_path, day=date(2026, 1, 1))
    again = export_dataset(_records(3), "d", "r", Doc, root=tmp_path, day=date(2026, 1, 1))
    assert again.rows == first.rows == 2
    assert json.loads(first.manifest.read_text())["rows"] == 2


class _Dated(BaseModel):
    date: str


def test_date_column_is_reserved_for_the_partition(tmp_path):
    with pytest.raises(InvalidInput, match="'date' is reserved"):
        export_dataset([{"date": "x"}], "d", "r", _Dated, root=tmp_path)


class _Row(BaseModel):
    run_id: str
    count: int
    ok: bool
    ratio: float | None
    at: datetime
    kind: Literal["a", "b"]
    tags: list[str]


def test_schema_of_a_row_model_gives_its_column_types(tmp_path):
    schema = schema_of(_Row)
    assert schema == {
        "run_id": Column.str,
        "count": Column.int,
        "ok": Column.bool,
        "ratio": Column.float,
        "at": Column.timestamp,
        "kind": Column.str,
        "tags": Column.json,
    }
    row = _Row(run_id="r", count=1, ok=True, ratio=None, at=datetime.now(UTC), kind="a", tags=[])
    result = export_dataset([row], "rows", "r", _Row, formats=["parquet"], root=tmp_path)
    assert str(pq.read_schema(result.files[0].path).field("count").type) == "int64"


class _Note(BaseModel):
    note: str


def test_bad_arguments_are_named(tmp_path):
    with pytest.raises(InvalidInput, match="xml"):
        export_dataset(_records(1), "d", "r", Doc, formats=["xml"], root=tmp_path)
    with pytest.raises(InvalidInput, match="run_id"):
        export_dataset(_records(1), "d", "../escape", Doc, root=tmp_path)
    with pytest.raises(InvalidInput, match="note"):
        export_dataset([{"document_id": "x"}], "d", "r", _Note, root=tmp_path)
    with pytest.raises(InvalidInput, match="row model"):
        export_dataset(_records(1), "d", "r", {"note": Column.str}, root=tmp_path)
