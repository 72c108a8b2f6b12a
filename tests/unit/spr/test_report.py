"""The `spr_results` dataset: its rows say what compressed each document and why it fell back,
and its export schema comes from the row model."""

from datetime import UTC, datetime

import pandas as pd

from tasks.export import Column, export_dataset, read_export, schema_of
from tasks.spr import datasets
from tasks.spr.datasets import DATASET, SPRResultRow
from tasks.spr.models import SPRDocument, SPRRequest
from tasks.spr.pipeline import analyze_document, assemble, compress_documents

CREATED = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def _results(reference_docs, compressor="extractive"):
    docs = [analyze_document(SPRDocument(id=f"d{i}", content=reference_docs[i])) for i in (0, 1)]
    params = SPRRequest(content="", compressor=compressor).compression_params("standard")
    return assemble(docs, [compress_documents(docs, params, {})])


def test_rows_say_which_compressor_ran_and_why_it_fell_back(reference_docs, monkeypatch):
    monkeypatch.delenv("REACTOR_ANTHROPIC_API_KEY", raising=False)
    rows = datasets.rows(_results(reference_docs, "auto"), "run_1", CREATED)
    assert {(r.compressor, r.source) for r in rows} == {("auto", "extractive")}
    assert all("compression: no Anthropic API key" in r.fallback_reason for r in rows)
    plain = datasets.rows(_results(reference_docs), "run_1", CREATED)
    assert {(r.compressor, r.source, r.fallback_reason) for r in plain} == {
        ("extractive", "extractive", None)
    }


def test_the_export_schema_comes_from_the_row_model():
    schema = schema_of(SPRResultRow)
    assert list(schema) == list(SPRResultRow.model_fields)
    assert schema["original_words"] is Column.int
    assert schema["quality"] is Column.float
    assert schema["passed"] is Column.bool
    assert schema["source"] is Column.str
    assert schema["fallback_reason"] is Column.str
    assert schema["content_type"] is Column.str
    assert schema["optimization_steps"] is Column.json
    assert schema["created_at"] is Column.timestamp


def test_rows_with_and_without_a_fallback_read_back_alike_in_every_format(
    reference_docs, tmp_path, monkeypatch
):
    monkeypatch.delenv("REACTOR_ANTHROPIC_API_KEY", raising=False)
    results = _results(reference_docs) + _results(reference_docs, "auto")
    exported = datasets.rows(results, "run_1", CREATED)
    export = export_dataset(exported, DATASET, "run_1", SPRResultRow, root=tmp_path)
    frames = {f.format: read_export(f.path) for f in export.files}
    for frame in frames.values():
        pd.testing.assert_frame_equal(frame, frames["parquet"])
    parquet = frames["parquet"]
    assert parquet["fallback_reason"].isna().sum() == 2
    assert list(parquet["source"]) == ["extractive"] * 4
    assert parquet["created_at"].iloc[0] == pd.Timestamp(CREATED)
