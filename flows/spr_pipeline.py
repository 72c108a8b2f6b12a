"""SPR pipeline: analyze → compress into each format in parallel → decompress and score →
re-compress while under the quality threshold → learn per-type ratios → export.

Documents travel in chunks (`chunk_size`, about 8 per run, ≥ 100 ms of work per task); a bad
document gets its own error in the result and the rest of the batch completes. Steps, datasets
and design decisions: docs/spr.md.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from opentelemetry import trace
from prefect import get_run_logger
from prefect.artifacts import acreate_progress_artifact, aupdate_progress_artifact
from prefect.utilities.annotations import quote

from tasks.events import emit
from tasks.runtime import current_run_id, reactor_flow
from tasks.spr import story, summary
from tasks.spr.files import batch_documents
from tasks.spr.learning import relevant_adjustments
from tasks.spr.models import DocumentFile, SPRRequest, SPRRunResult
from tasks.spr.pipeline import assemble, chunked, pack
from tasks.spr.prefect_tasks import (
    analyze_chunk,
    compress_chunk,
    export_results,
    load_adjustments,
    log_run,
    publish_report,
    save_adjustments,
    write_spr_files,
)
from tasks.spr.sprfile import with_spr_files
from tasks.tracing import format_trace_id

SAMPLE_DIR = Path(__file__).resolve().parents[1] / "samples" / "spr"


def sample_request(**overrides) -> SPRRequest:
    """The bundled sample documents (samples/spr/) as a request."""
    return SPRRequest(paths=[SAMPLE_DIR], **overrides)


def _trace_id() -> str | None:
    context = trace.get_current_span().get_span_context()
    return format_trace_id(context.trace_id) if context.is_valid else None


@reactor_flow("spr-pipeline", resumable=True)
async def spr_pipeline(request: SPRRequest) -> SPRRunResult:
    logger = get_run_logger()
    run_id, trace_id = current_run_id(), _trace_id()
    docs = batch_documents(request)
    labels, chunks = map(list, zip(*chunked(docs, request.chunk_size_for(len(docs))), strict=True))
    files = sum(isinstance(d, DocumentFile) for d in docs)
    logger.info(
        "SPR batch: %d documents (%d inline, %d files), chunks: %d; formats %s; compressor %s; "
        "quality threshold %s",
        len(docs),
        len(docs) - files,
        files,
        len(chunks),
        ", ".join(request.formats),
        request.compressor,
        request.quality_threshold,
    )
    emit("spr", "started", run_id, {"documents": len(docs), "formats": request.formats})

    # 1. content analysis (and per-document input checks), chunk by chunk
    analyzed = [f.result() for f in analyze_chunk.map(chunks, labels)]
    for level, line in story.analysis_story([d for chunk in analyzed for d in chunk]):
        logger.log(level, line)
    learned = load_adjustments()

    # 2-4. every (format, chunk) at once: compress, roundtrip quality, bounded re-compression
    futures = {
        (fmt, label): compress_chunk.submit(
            pack(chunk),
            request.compression_params(fmt),
            relevant_adjustments(chunk, fmt, learned),
            label,
        )
        for fmt in request.formats
        for chunk, label in zip(analyzed, labels, strict=True)
    }
    progress = await acreate_progress_artifact(0.0, description="SPR compression")
    per_format: dict[str, dict] = {fmt: {} for fmt in request.formats}
    cached = 0
    for done, ((fmt, label), future) in enumerate(futures.items(), 1):
        outcome = future.result()
        hit = future.state.name == "Cached"
        cached += hit
        per_format[fmt].update(outcome)
        for level, line in story.chunk_story(fmt, label, outcome, hit, request.quality_threshold):
            logger.log(level, line)
        await aupdate_progress_artifact(progress, 100.0 * done / len(futures))
    results = assemble([d for chunk in analyzed for d in chunk], list(per_format.values()))
    story.record_metrics(results)

    # 5. learned per-content-type ratio adjustments, persisted for the next run
    if request.learn:
        learned = save_adjustments(
            quote(results), request.optimization_step, request.quality_threshold, run_id
        )
        logger.info("learned ratio adjustments (persisted): %s", learned or "none")

    # 6. .spr files, exports, coordination log, UI
    if request.write_spr_files:
        results = with_spr_files(results, write_spr_files(quote(results), run_id, trace_id))
    spr_files = [fr.spr_file for d in results for fr in d.formats if fr.spr_file]
    if spr_files:
        folder = str(spr_files[0]).rpartition("/")[0]  # a local path or an object-store URI
        logger.info("wrote %d .spr files under %s", len(spr_files), folder)
    export = export_results(quote(results), run_id, request.export_formats)
    if export is not None:
        files_to = ", ".join(str(f.path) for f in export.files)
        logger.info("exported %s (%d rows) to %s", export.dataset, export.rows, files_to)
    stats = summary.stats(results)
    log_size = log_run(run_id, trace_id, {**stats, "documents": len(results)})
    publish_report(quote(results), run_id, learned, request.quality_threshold)
    logger.info(
        "SPR run done: %s processed, %s with errors, median quality %s, passed %.0f%%; "
        "%d/%d chunks from cache",
        stats["processed"],
        stats["failed"],
        stats["median_quality"],
        100 * stats["passed_rate"],
        cached,
        len(futures),
    )
    emit("spr", "completed", run_id, stats)
    return SPRRunResult(
        run_id=run_id,
        trace_id=trace_id,
        documents=results,
        learned_adjustments=learned,
        export=export,
        spr_files=spr_files,
        coordination_log_size=log_size,
        cached_chunks=cached,
        compressed_chunks=len(futures),
        **stats,
    )


if __name__ == "__main__":
    result = asyncio.run(spr_pipeline(sample_request()))
    print(result.model_dump_json(indent=2, exclude={"documents"}))
