"""An SPR run SIGKILLed at three points of its own progress, resumed under the same flow-run id:
chunks that finished are not compressed again, and the run's exports and log entry exist once."""

from __future__ import annotations

import asyncio
from collections import Counter

import pandas as pd
import pytest

from flows.spr_pipeline import spr_pipeline
from tasks.coordination_log import read_log
from tasks.export import dataset_folder, read_export
from tasks.span_log import read_spans, spans_path
from tasks.spr.models import SPRDocument, SPRRequest
from tests.crash import persisted_results, resume, run_and_kill
from tests.flows.test_spr_pipeline import _docs

# a spawned Prefect process starts in ~30 s on loaded shared cores; the kill tests wait for it
pytestmark = pytest.mark.timeout(600)

ENTRY = "flows.spr_pipeline:spr_pipeline"
FORMATS = ["standard"]
DOCS = 4


def compressions(settings) -> Counter:
    """(format, chunk) -> how many times the compressor finished it: its own span records."""
    return Counter(
        (s["span_attributes"]["spr.format"], s["span_attributes"]["spr.chunk"])
        for s in read_spans(spans_path(settings))
        if s["operation_name"] == "spr.compress_chunk"
    )


def spr_files(settings) -> list:
    return list((settings.exports_dir / "spr").rglob("*.spr"))


def persisted_chunks(settings) -> int:
    """Compress results the run has persisted: the result files beyond the analysis's (one per
    chunk) and the loaded ratios' (one), which all come before the first compression (capped:
    the steps after the compressions persist theirs too)."""
    return min(max(0, persisted_results(settings) - DOCS - 1), DOCS * len(FORMATS))


KILL_POINTS = {
    "after-first-chunk": lambda s: persisted_chunks(s) >= 1,
    "midway": lambda s: persisted_chunks(s) >= DOCS * len(FORMATS) // 2,
    "during-export": lambda s: len(spr_files(s)) > 0,
}


def read_dataset(settings, fmt: str) -> pd.DataFrame:
    """Every row of the spr_results dataset in `fmt` (every run, every day)."""
    files = sorted(dataset_folder(settings.exports_dir, "spr_results", fmt).rglob(f"*.{fmt}"))
    return pd.concat([read_export(f) for f in files], ignore_index=True)


def request(docs: list[SPRDocument]) -> SPRRequest:
    return SPRRequest(
        documents=docs, formats=FORMATS, chunk_size=1, export_formats=["jsonl", "parquet"]
    )


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_killed_spr_run_resumes_without_recompressing_finished_chunks(reactor_env, point):
    docs = _docs(DOCS, words=300)
    persisted: list[int] = []

    def kill_when() -> bool:
        persisted.append(persisted_chunks(reactor_env))
        return KILL_POINTS[point](reactor_env)

    killed = run_and_kill(ENTRY, {"request": request(docs).model_dump(mode="json")}, kill_when)
    done_before = compressions(reactor_env)
    # compressed but killed before its result was persisted: the only chunks that may run again
    unpersisted = sum(done_before.values()) - persisted[-1]

    outcome = resume(killed.flow_run_id)

    assert outcome.flow_run_id == killed.flow_run_id and outcome.state == "Completed"
    assert outcome.run_count >= 2
    after = compressions(reactor_env)
    assert set(after) == {(f, f"docs-{i}-{i}") for f in FORMATS for i in range(1, DOCS + 1)}
    recompressed = sum(after.values()) - len(after)
    assert recompressed <= unpersisted, f"finished chunks compressed again: {after}"
    assert max(after.values()) <= 2
    run_id = str(killed.flow_run_id)
    for fmt in ("jsonl", "parquet"):
        frame = read_dataset(reactor_env, fmt)
        assert len(frame) == DOCS * len(FORMATS)
        assert not frame.duplicated(["run_id", "document_id", "format"]).any()
        assert set(frame["run_id"]) == {run_id}
    exports = reactor_env.exports_dir  # no dataset write left half-done (.spr files may be cut)
    assert not [p for p in exports.rglob(".*.tmp") if p.relative_to(exports).parts[0] != "spr"]
    entries = [e for e in read_log(reactor_env) if e.get("run_id") == run_id]
    assert len(entries) == 1 and entries[0]["processed"] == DOCS
    assert len(spr_files(reactor_env)) == DOCS * len(FORMATS)


def test_new_spr_run_after_a_crash_without_resume_exports_only_its_own_rows(reactor_env):
    """No retry: the dead run left no rows or log entry, and the next run proceeds normally."""
    docs = _docs(DOCS, words=300)
    params = {"request": request(docs).model_dump(mode="json")}
    killed = run_and_kill(ENTRY, params, lambda: KILL_POINTS["midway"](reactor_env))

    result = asyncio.run(spr_pipeline(request(docs)))

    assert result.run_id != str(killed.flow_run_id) and result.processed == DOCS
    frame = read_dataset(reactor_env, "parquet")
    assert set(frame["run_id"]) == {result.run_id} and len(frame) == DOCS * len(FORMATS)
    assert [e["run_id"] for e in read_log(reactor_env) if e.get("scenario") == "spr"] == [
        result.run_id
    ]
