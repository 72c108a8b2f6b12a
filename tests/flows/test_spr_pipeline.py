"""The SPR flow against the session's Prefect test server, on small real documents."""

import asyncio
import json
import pydoc_data.topics
import uuid
from pathlib import Path

import pandas as pd
import pytest

from flows.spr_pipeline import sample_request, spr_pipeline
from tasks.coordination_log import read_log
from tasks.export import read_export
from tasks.span_log import read_spans, spans_path
from tasks.spr import llm
from tasks.spr.models import SPRDocument, SPRRequest, SPRRunResult
from tasks.spr.sprfile import parse_spr, validate_spr
from tasks.spr.text import word_count
from tests.flows.run_helpers import line_with
from tests.prefect_api import run_logs
from tests.unit.spr.anthropic_api import answer, api, status


def run(request: SPRRequest | dict) -> SPRRunResult:
    return asyncio.run(spr_pipeline(request))


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
    result = run(sample_request())
    assert result.processed == 5 and result.failed == 0
    types = {d.document_id: d.analysis.content_type for d in result.documents}
    assert types["retry_client.py"] == "code"
    assert types["worker.log"] == "data/log"
    assert types["support-chat.txt"] == "conversation"
    for doc in result.documents:
        assert [f.format for f in doc.formats] == ["minimal", "standard", "extended"]
        for fr in doc.formats:
            assert abs(fr.achieved_ratio - fr.target_ratio) <= 0.03
            assert fr.source == "extractive" and fr.decompressed
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
    result = run(
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
        assert fr.source == "extractive" and "no Anthropic API key" in fr.fallback_reason


def test_fifty_documents_export_four_identical_formats_and_a_manifest(reactor_env):
    result = run(SPRRequest(documents=_docs(50), formats=["standard"], chunk_size=25))
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
    first = run(request)
    second = run(request)
    assert first.compressed_chunks == second.compressed_chunks == 2
    assert first.cached_chunks == 0
    assert second.cached_chunks == 2
    assert [f.spr_text for d in second.documents for f in d.formats] == [
        f.spr_text for d in first.documents for f in d.formats
    ]
    changed = run(request.model_copy(update={"target_ratio": 0.2}))
    assert changed.cached_chunks == 1  # minimal unchanged, standard re-compressed


def test_learned_ratio_adjustments_persist_and_start_the_next_run_higher(reactor_env):
    request = SPRRequest(
        documents=_docs(3), formats=["standard"], quality_threshold=0.99,
        max_optimization_steps=1, export_formats=["json"],
    )  # fmt: skip
    first = run(request)
    assert all(len(f.optimization_steps) == 2 for d in first.documents for f in d.formats)
    second = run(request)
    for doc in second.documents:
        ctype = doc.analysis.content_type
        start = doc.formats[0].optimization_steps[0].target_ratio
        assert start == pytest.approx(0.15 + first.learned_adjustments[ctype]["standard"])
        assert start > 0.15


def test_target_ratio_outside_0_1_is_rejected_before_anything_runs(reactor_env):
    with pytest.raises(Exception, match="target_ratio"):
        run({"content": "some words " * 30, "target_ratio": 1.5})


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_two_files_with_the_same_name_keep_their_own_results_and_spr_files(reactor_env, tmp_path):
    one, two = (d.content for d in _docs(2))
    _write(tmp_path / "batch" / "a" / "notes.txt", one)
    _write(tmp_path / "batch" / "b" / "notes.txt", two)
    result = run(
        SPRRequest(
            paths=[tmp_path / "batch" / "a", tmp_path / "batch" / "b"],
            formats=["standard"],
            export_formats=["json"],
        )
    )
    assert [d.document_id for d in result.documents] == ["a/notes.txt", "b/notes.txt"]
    texts = [d.formats[0].spr_text for d in result.documents]
    assert texts[0] != texts[1]
    assert len(set(result.spr_files)) == 2
    for doc in result.documents:
        spr = parse_spr(doc.formats[0].spr_file.read_text())
        assert spr.document_id == doc.document_id
    rows = json.loads(result.export.files[0].path.read_text())
    assert sorted(r["document_id"] for r in rows) == ["a/notes.txt", "b/notes.txt"]


def test_an_explicitly_passed_dot_file_gets_its_own_error(reactor_env, tmp_path):
    (good,) = _docs(1)
    good_file = _write(tmp_path / "good.txt", good.content)
    hidden = _write(tmp_path / ".env", good.content)
    request = SPRRequest(paths=[good_file, hidden], formats=["standard"], export_formats=["json"])
    result = run(request)
    errors = {d.document_id: d.error for d in result.documents}
    assert errors["good.txt"] is None
    assert "hidden file" in errors[".env"]
    assert result.processed == 1 and result.failed == 1


def _claude_request(docs: list[SPRDocument]) -> SPRRequest:
    """One chunk, one format, one Claude compression and decompression per document."""
    return SPRRequest(
        documents=docs, formats=["standard"], export_formats=["json"], compressor="auto",
        quality_threshold=0.0, max_optimization_steps=0, learn=False, write_spr_files=False,
    )  # fmt: skip


@pytest.fixture
def anthropic_key(monkeypatch):
    monkeypatch.setenv("REACTOR_ANTHROPIC_API_KEY", "sk-ant-test-0123456789")
    monkeypatch.setenv("REACTOR_LLM_MAX_RETRIES", "0")


def _sources(result: SPRRunResult) -> set[str]:
    return {f.source for d in result.documents for f in d.formats}


def test_a_fallback_taken_during_a_429_is_not_replayed_once_claude_answers(
    reactor_env, anthropic_key, monkeypatch
):
    request = _claude_request(_docs(2))
    factory, _ = api(lambda body, n: status(429))
    monkeypatch.setattr(llm, "Claude", factory)
    limited = run(request)
    assert _sources(limited) == {"extractive"}
    assert all("HTTP 429" in f.fallback_reason for d in limited.documents for f in d.formats)

    factory, calls = api(answer)
    monkeypatch.setattr(llm, "Claude", factory)
    answered = run(request)
    assert answered.cached_chunks == 0 and len(calls) == 4  # compress + decompress, 2 docs
    assert _sources(answered) == {"claude"}

    again = run(request)  # Claude's own result is the one the cache keeps
    assert again.cached_chunks == 1 and len(calls) == 4
    assert _sources(again) == {"claude"}


def test_an_auto_run_without_a_key_is_not_replayed_once_a_key_is_configured(
    reactor_env, monkeypatch
):
    request = _claude_request(_docs(2))
    assert _sources(run(request)) == {"extractive"}
    monkeypatch.setenv("REACTOR_ANTHROPIC_API_KEY", "sk-ant-test-0123456789")
    factory, calls = api(answer)
    monkeypatch.setattr(llm, "Claude", factory)
    keyed = run(request)
    assert keyed.cached_chunks == 0 and calls
    assert _sources(keyed) == {"claude"}


def test_the_run_logs_tell_the_story(reactor_env):
    docs = _docs(3)
    secret_sentence = max(docs[0].content.split("."), key=len).strip()  # text is never logged
    result = run(
        SPRRequest(
            documents=[*docs, SPRDocument(id="empty", content="")],
            formats=["minimal", "standard"],
            export_formats=["json", "csv"],
            compressor="auto",  # no key: every document falls back, with the reason
            quality_threshold=0.99,
            max_optimization_steps=1,
        )
    )
    logs = run_logs(result.run_id, expect="SPR run done")
    for facts in (
        ("4 documents", "4 inline", "0 files", "chunks: 1"),
        ("4 documents", "3 to compress"),
        ("rejected", "'empty'"),
        *((fmt, "docs-1-4", "3 documents", "median") for fmt in ("minimal", "standard")),
        *((fmt, "docs-1-4", "3 documents", "extractive") for fmt in ("minimal", "standard")),
        ("no Anthropic API key",),  # the fallback's reason
        ("re-compressed",),  # a step of the optimisation loop
        ("2 attempts",),  # where the bounded loop stopped
        ("learned", "persisted"),
    ):
        assert line_with(logs, *facts), f"no line with {facts} in the run's logs:\n{logs}"
    for exported in result.export.files:
        assert str(exported.path) in logs
    assert line_with(logs, ".spr", result.spr_files[0].parent)
    assert secret_sentence not in logs


async def _artifacts(key: str) -> list:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    async with get_client() as client:
        return await client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key]))
        )


def test_artifacts_keep_stable_keys_so_the_ui_shows_their_history(reactor_env):
    runs = [run(SPRRequest(documents=_docs(2), formats=["standard"], export_formats=["json"]))]
    runs.append(run(SPRRequest(documents=_docs(2), formats=["standard"], export_formats=["json"])))
    for key in ("spr-results", "spr-summary"):
        flow_runs = {str(a.flow_run_id) for a in asyncio.run(_artifacts(key))}
        assert {r.run_id for r in runs} <= flow_runs, key
