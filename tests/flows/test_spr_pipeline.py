"""The SPR flow against the session's Prefect test server, on small real documents."""

import json
import pydoc_data.topics
import uuid

import pandas as pd
import pytest

from flows.spr_pipeline import sample_request, spr_pipeline
from tasks.coordination_log import read_log
from tasks.export import read_export
from tasks.spr.models import SPRDocument, SPRRequest
from tasks.spr.sprfile import parse_spr, validate_spr
from tasks.spr.text import word_count
from tasks.telemetry import read_spans, spans_path


def _docs(n: int, words: int = 120) -> list[SPRDocument]:
    """`n` real documents: slices of the Python reference topics, made unique per test so a
    previous session's cache never answers."""
    texts = [t for _, t in sorted(pydoc_data.topics.topics.items()) if word_count(t) >= words]
    tag = uuid.uuid4().hex[:8]
    docs = []
    for i in range(n):
        body = " ".join(texts[i % len(texts)].split()[(i // len(texts)) * 20 :][:words])
        docs.append(SPRDocument(id=f"doc-{i:03d}", content=f"Run {tag} document {i}. {body}"))
    return docs


def test_sample_batch_runs_end_to_end(reactor_env):
    result = spr_pipeline(sample_request())
    assert result.processed == 5 and result.failed == 0
    types = {d.document_id: d.analysis.content_type for d in result.documents}
    assert types["retry_client.py"] == "code"
    assert types["worker.log"] == "data/log"
    assert types["support-chat.txt"] == "conversation"
    for doc in result.documents:
        assert [f.format for f in doc.formats] == ["minimal", "standard", "extended"]
        for fr in doc.formats:
            assert abs(fr.achieved_ratio - fr.target_ratio) <= 0.03
            assert fr.compressor == "extractive" and fr.decompressed
    assert len(result.spr_files) == 15
    for path in result.spr_files:
        spr = parse_spr(path.read_text(), str(path))
        assert validate_spr(spr) == []
        assert spr.trace_id == result.trace_id is not None
    (entry,) = [e for e in read_log(reactor_env) if e.get("run_id") == result.run_id]
    assert entry["scenario"] == "spr" and entry["processed"] == 5
    learned = json.loads((reactor_env.coordination_dir / "spr_learned_ratios.json").read_text())
    assert learned["last_run_id"] == result.run_id
    names = {s["operation_name"] for s in read_spans(spans_path(reactor_env), result.trace_id)}
    assert {f"compress-{f}-docs-1-5" for f in ("minimal", "standard", "extended")} <= names


def test_bad_documents_get_their_own_error_and_the_rest_completes(reactor_env, tmp_path):
    good = _docs(2)
    bad = [
        SPRDocument(id="empty", content=""),
        SPRDocument(id="blank", content="  \n\t "),
        SPRDocument(id="binary", content=b"\x89PNG\r\n\x1a\n\x00\xff\xfe" * 50),
    ]
    huge = tmp_path / "huge"  # 10 MB can only travel as a path (flow parameters ≤ 512 KB)
    huge.write_bytes(b"lorem ipsum " * (10 * 2**20 // 12))
    result = spr_pipeline(
        SPRRequest(
            documents=good + bad,
            paths=[huge],
            formats=["standard"],
            export_formats=["json"],
            compressor="auto",  # no key configured: extractive, and the result says why
        )
    )
    errors = {d.document_id: d.error for d in result.documents}
    assert errors["doc-000"] is None and errors["doc-001"] is None
    assert "is empty" in errors["empty"]
    assert "whitespace only" in errors["blank"]
    assert "not UTF-8" in errors["binary"]
    assert "10.0 MiB" in errors["huge"]
    assert result.processed == 2 and result.failed == 4
    assert result.export.rows == 2
    for doc in result.documents[:2]:
        (fr,) = doc.formats
        assert fr.compressor == "extractive" and "no Anthropic API key" in fr.fallback_reason


def test_fifty_documents_export_four_identical_formats_and_a_manifest(reactor_env):
    result = spr_pipeline(SPRRequest(documents=_docs(50), formats=["standard"], chunk_size=25))
    export = result.export
    assert export.rows == 50
    assert sorted(f.format for f in export.files) == ["csv", "json", "jsonl", "parquet"]
    frames = {f.format: read_export(f.path) for f in export.files}
    for frame in frames.values():
        pd.testing.assert_frame_equal(frame, frames["parquet"])
    first = frames["json"].iloc[0]
    assert isinstance(first["optimization_steps"], list)
    spans = read_spans(spans_path(reactor_env), trace_id=result.trace_id)
    task_spans = {s["span_id"]: s["operation_name"] for s in spans}
    chunks = [s for s in spans if s["operation_name"] == "spr.compress_chunk"]
    assert sum(s["span_attributes"]["spr.documents"] for s in chunks) == 50
    assert {task_spans[s["parent_span_id"]] for s in chunks} == {
        "compress-standard-docs-1-25",
        "compress-standard-docs-26-50",
    }
    manifest = json.loads(export.manifest.read_text())
    assert manifest["rows"] == 50
    assert {f.format: f.sha256 for f in export.files} == {
        fmt: entry["sha256"] for fmt, entry in manifest["files"].items()
    }


def test_same_content_parameters_and_code_is_a_cache_hit_in_the_next_run(reactor_env):
    request = SPRRequest(documents=_docs(4), formats=["minimal", "standard"], learn=False)
    first = spr_pipeline(request)
    second = spr_pipeline(request)
    assert first.compressed_chunks == second.compressed_chunks == 2
    assert first.cached_chunks == 0
    assert second.cached_chunks == 2
    assert [f.spr_text for d in second.documents for f in d.formats] == [
        f.spr_text for d in first.documents for f in d.formats
    ]
    changed = spr_pipeline(request.model_copy(update={"target_ratio": 0.2}))
    assert changed.cached_chunks == 1  # minimal unchanged, standard re-compressed


def test_learned_ratio_adjustments_persist_and_start_the_next_run_higher(reactor_env):
    request = SPRRequest(
        documents=_docs(3), formats=["standard"], quality_threshold=0.99,
        max_optimization_steps=1, export_formats=["json"],
    )  # fmt: skip
    first = spr_pipeline(request)
    assert all(len(f.optimization_steps) == 2 for d in first.documents for f in d.formats)
    second = spr_pipeline(request)
    for doc in second.documents:
        ctype = doc.analysis.content_type
        start = doc.formats[0].optimization_steps[0].target_ratio
        assert start == pytest.approx(0.15 + first.learned_adjustments[ctype]["standard"])
        assert start > 0.15


def test_target_ratio_outside_0_1_is_rejected_before_anything_runs(reactor_env):
    with pytest.raises(Exception, match="target_ratio"):
        spr_pipeline(request={"content": "some words " * 30, "target_ratio": 1.5})
