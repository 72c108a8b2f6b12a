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
from pydantic import TypeAdapter

from tasks.coordination_log import append_entries
from tasks.export import ExportResult, export_dataset
from tasks.settings import get_settings
from tasks.spr import report
from tasks.spr.models import DocumentResult, FormatResult, SPRDocument, SPRRequest
from tasks.spr.pipeline import AnalyzedDocument, analyze_document, compress_documents
from tasks.spr.pipeline import learn_adjustments as learn
from tasks.spr.sprfile import render_spr
from tasks.store import JsonStore
from tasks.telemetry import get_tracer

LEARNED_FILE = "spr_learned_ratios.json"


@cache
def code_version() -> str:
    """A hash of the SPR package's source: TASK_SOURCE alone would miss a change in the
    compressor the task calls."""
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


# same content + same parameters + same code => cache hit, across runs (results persisted)
COMPRESSION_CACHE = INPUTS + TASK_SOURCE + CacheKeyFnPolicy(cache_key_fn=lambda *_: code_version())


_CHUNK = TypeAdapter(list[AnalyzedDocument])


def pack(docs: list[AnalyzedDocument]) -> str:
    """A chunk as one JSON string. Prefect walks model-valued task inputs looking for futures
    (measured: ~40 % overhead on 1,000 documents); a string is a leaf, hashes stably for the
    cache key, and crosses to Dask workers unchanged (a `quote()` wrapper does not)."""
    return _CHUNK.dump_json(docs).decode()


@task(task_run_name="analyze-{label}", retries=1, retry_delay_seconds=1)
def analyze_chunk(docs: list[SPRDocument | Path], label: str) -> list[AnalyzedDocument]:
    return [analyze_document(doc) for doc in docs]


@task(
    task_run_name="compress-{fmt}-{label}",
    cache_policy=COMPRESSION_CACHE,
    persist_result=True,
    retries=2,
    retry_delay_seconds=1,
)
def compress_chunk(
    packed_docs: str,
    fmt: str,
    params: SPRRequest,
    adjustments: dict[str, float],
    label: str,
) -> dict[str, FormatResult | str]:
    """Compress, decompress, score and (bounded) re-compress each document of the chunk
    (`packed_docs` from `pack`; `adjustments`: learned ratio delta per content type)."""
    docs = _CHUNK.validate_json(packed_docs)
    with get_tracer().start_as_current_span(
        "spr.compress_chunk", attributes={"spr.format": fmt, "spr.documents": len(docs)}
    ) as span:
        per_type = {ctype: {fmt: delta} for ctype, delta in adjustments.items()}
        out = compress_documents(docs, fmt, params, per_type)
        done = [r for r in out.values() if isinstance(r, FormatResult)]
        span.set_attribute("spr.compressed", len(done))
        span.set_attribute("spr.errors", len(out) - len(done))
        span.set_attribute("spr.recompressions", sum(len(r.optimization_steps) - 1 for r in done))
        return out


def learned_store() -> JsonStore[dict[str, Any]]:
    settings = get_settings()
    return JsonStore(
        settings.coordination_dir / LEARNED_FILE,
        dict,
        lock_timeout_s=settings.lock_timeout_s,
        lock_tries=settings.lock_tries,
    )


@task(task_run_name="load-learned-ratios")
def load_adjustments() -> dict[str, dict[str, float]]:
    return learned_store().read().get("adjustments", {})


@task(task_run_name="learn-ratios")
def save_adjustments(
    results: list[DocumentResult], step: float, threshold: float, run_id: str
) -> dict[str, dict[str, float]]:
    """Fold this run into the persisted adjustments (under the store's lock)."""

    def mutate(state: dict[str, Any]) -> None:
        state["adjustments"] = learn(state.get("adjustments", {}), results, step, threshold)
        state["runs"] = int(state.get("runs", 0)) + 1
        state["last_run_id"] = run_id
        state["updated_at"] = datetime.now(UTC).isoformat()

    return learned_store().update(mutate)["adjustments"]


@task(task_run_name="write-spr-files")
def write_spr_files(results: list[DocumentResult], run_id: str, trace_id: str | None) -> list[Path]:
    """`<exports>/spr/<day>/<run_id>/<doc>.<format>.spr`, each written atomically."""
    from tasks.store import atomic_write_bytes

    now = datetime.now(UTC)
    folder = get_settings().exports_dir / "spr" / now.date().isoformat() / run_id
    paths = []
    for doc in results:
        for fr in doc.formats:
            text = render_spr(
                fr.spr_text.splitlines(),
                original_words=fr.original_words,
                target_ratio=fr.target_ratio,
                format=fr.format,
                trace_id=trace_id,
                document_id=doc.document_id,
                compressor=fr.compressor,
                generated=now,
            )
            path = folder / f"{doc.document_id}.{fr.format}.spr"
            atomic_write_bytes(path, text.encode())
            fr.spr_file = path
            paths.append(path)
    return paths


@task(task_run_name="export-{run_id}")
def export_results(
    results: list[DocumentResult], run_id: str, formats: list[str]
) -> ExportResult | None:
    rows = report.records(results, run_id, datetime.now(UTC))
    if not rows:
        return None
    return export_dataset(
        rows,
        report.DATASET,
        run_id,
        report.SCHEMA,
        formats=formats,  # type: ignore[arg-type]
        root=get_settings().exports_dir,
    )


@task(task_run_name="log-run-{run_id}")
def log_run(run_id: str, trace_id: str | None, summary: dict[str, Any]) -> int:
    return append_entries([{"scenario": "spr", "run_id": run_id, "trace_id": trace_id, **summary}])
