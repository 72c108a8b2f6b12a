"""The @task wrappers the SPR flow calls: chunked (each task carries a batch of documents,
never one row), readable run names, retries and the cross-run cache on the decorator.
Imports Prefect (edge module)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import INPUTS, TASK_SOURCE, CacheKeyFnPolicy
from prefect.context import TaskRunContext
from prefect.transactions import get_transaction

from tasks.artifacts import publish_markdown, publish_table
from tasks.coordination_log import append_entries, idempotency_key
from tasks.export import ExportResult, export_dataset
from tasks.resume import RESUMABLE
from tasks.settings import get_settings
from tasks.spr import datasets, learning, sprfile, summary
from tasks.spr.llm import planned_source
from tasks.spr.models import (
    AnalyzedDocument,
    CompressionParams,
    DocumentFile,
    DocumentResult,
    FormatResult,
    RatioAdjustments,
    SPRDocument,
)
from tasks.spr.pipeline import analyze_document, compress_documents, unpack
from tasks.storage import join
from tasks.telemetry import get_tracer


@cache
def code_version() -> str:
    """A hash of the SPR package's source: TASK_SOURCE alone would miss a change in the
    compressor the task calls."""
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _compressor_key(_: TaskRunContext, inputs: dict[str, Any]) -> str:
    # which compressor will run (and whether that is a known fallback, e.g. no key): a result
    # compressed without Claude never answers once Claude can run
    return f"{code_version()}|{planned_source(inputs['params'].compressor)}"


# same content + parameters + code + compressor that will run => cache hit, across runs.
# A chunk in which Claude was tried and failed is not cached at all (see compress_chunk).
COMPRESSION_CACHE = INPUTS + TASK_SOURCE + CacheKeyFnPolicy(cache_key_fn=_compressor_key)


@task(task_run_name="analyze-{label}", retries=1, retry_delay_seconds=1, cache_policy=RESUMABLE)
def analyze_chunk(docs: list[SPRDocument | DocumentFile], label: str) -> list[AnalyzedDocument]:
    return [analyze_document(doc) for doc in docs]


@task(
    task_run_name="compress-{params.format}-{label}",
    cache_policy=COMPRESSION_CACHE,
    persist_result=True,
    retries=2,
    retry_delay_seconds=1,
)
def compress_chunk(
    packed_docs: str, params: CompressionParams, adjustments: RatioAdjustments, label: str
) -> dict[str, FormatResult | str]:
    """Compress, decompress, score and (bounded) re-compress each document of the chunk
    (`packed_docs` from `pipeline.pack`; `adjustments` from `learning.relevant_adjustments`)."""
    docs = unpack(packed_docs)
    with get_tracer().start_as_current_span(
        "spr.compress_chunk",
        attributes={"spr.format": params.format, "spr.chunk": label, "spr.documents": len(docs)},
    ) as span:
        out = compress_documents(docs, params, adjustments)
        done = [r for r in out.values() if isinstance(r, FormatResult)]
        span.set_attribute("spr.compressed", len(done))
        span.set_attribute("spr.errors", len(out) - len(done))
        span.set_attribute("spr.recompressions", sum(len(r.optimization_steps) - 1 for r in done))
    if planned_source(params.compressor).startswith("claude") and any(
        r.fallback_reasons for r in done
    ):
        # Claude was configured and failed (429, 529, timeout, bad output): this fallback must
        # not answer the next run in Claude's place, so the result is not written to the cache
        transaction = get_transaction()
        if transaction is not None:
            transaction.write_on_commit = False
    return out


@task(task_run_name="load-learned-ratios", cache_policy=RESUMABLE)
def load_adjustments() -> RatioAdjustments:
    return learning.load_learned()


@task(task_run_name="learn-ratios", cache_policy=RESUMABLE)
def save_adjustments(
    results: list[DocumentResult], step: float, threshold: float, run_id: str
) -> RatioAdjustments:
    return learning.record_run(results, step, threshold, run_id)


@task(task_run_name="write-spr-files", cache_policy=RESUMABLE)
def write_spr_files(
    results: list[DocumentResult], run_id: str, trace_id: str | None
) -> sprfile.WrittenFiles:
    """`<exports>/spr/<day>/<run_id>/<document id>.<format>.spr`."""
    now = datetime.now(UTC)
    folder = join(get_settings().exports_dir, "spr", now.date().isoformat(), run_id)
    return sprfile.write_spr_files(results, folder, trace_id, now)


@task(task_run_name="export-{run_id}", cache_policy=RESUMABLE)
def export_results(
    results: list[DocumentResult], run_id: str, formats: list[str]
) -> ExportResult | None:
    rows = datasets.rows(results, run_id, datetime.now(UTC))
    if not rows:
        return None
    return export_dataset(
        rows,
        datasets.DATASET,
        run_id,
        datasets.SPRResultRow,
        formats=formats,  # type: ignore[arg-type]
        root=get_settings().exports_dir,
    )


@task(task_run_name="log-run-{run_id}", cache_policy=RESUMABLE)
def log_run(run_id: str, trace_id: str | None, summary: dict[str, Any]) -> int:
    # keyed by run: a retry of a run killed after this append does not log the run twice
    entry = {"scenario": "spr", "run_id": run_id, "trace_id": trace_id, **summary}
    return append_entries([{**entry, "idempotency_key": idempotency_key("spr", run_id)}])


@task(task_run_name="publish-report", cache_policy=RESUMABLE)
def publish_report(
    results: list[DocumentResult], run_id: str, learned: RatioAdjustments, threshold: float
) -> None:
    """The table and markdown artifacts, under stable keys (the UI shows their history)."""
    publish_table(
        summary.RESULTS_ARTIFACT, summary.table_rows(results), "SPR results per document and format"
    )
    publish_markdown(
        summary.SUMMARY_ARTIFACT,
        summary.markdown_report(results, run_id, learned, threshold),
        "SPR pipeline report",
    )
