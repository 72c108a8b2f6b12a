"""SPR pipeline (SPEC §4): analyse → compress into each format in parallel → decompress and
score → re-compress while under the quality threshold → learn per-type ratios → export.

Documents travel in chunks (`chunk_size`, about 8 per run, ≥ 100 ms of work per task); a bad
document gets its own error in the result and the rest of the batch completes.
"""

from __future__ import annotations

from pathlib import Path

from opentelemetry import trace
from prefect import flow
from prefect.utilities.annotations import quote

from tasks.artifacts import Progress, publish_markdown, publish_table
from tasks.events import emit
from tasks.runtime import current_run_id, task_runner
from tasks.spr import report
from tasks.spr.files import expand_paths
from tasks.spr.models import SPRRequest, SPRRunResult
from tasks.spr.pipeline import adjustments_for, assemble, chunked
from tasks.spr.prefect_tasks import (
    analyze_chunk,
    compress_chunk,
    export_results,
    load_adjustments,
    log_run,
    pack,
    save_adjustments,
    write_spr_files,
)
from tasks.telemetry import configure_telemetry

# also at import: Prefect opens the flow-run span before the body runs, and that span (whose
# trace id goes into the .spr headers and the log) is only recorded once a provider exists
configure_telemetry()

SAMPLE_DIR = Path(__file__).resolve().parents[1] / "samples" / "spr"


def sample_request(**overrides) -> SPRRequest:
    """The bundled sample documents (samples/spr/) as a request."""
    return SPRRequest(paths=[SAMPLE_DIR], **overrides)


def _trace_id() -> str | None:
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


@flow(name="spr-pipeline", task_runner=task_runner(), validate_parameters=True)
def spr_pipeline(request: SPRRequest) -> SPRRunResult:
    configure_telemetry()
    run_id, trace_id = current_run_id(), _trace_id()
    docs = [*request.all_documents(), *expand_paths(request.paths)]
    labels, chunks = map(list, zip(*chunked(docs, request.chunk_size_for(len(docs))), strict=True))
    emit("spr", "started", run_id, {"documents": len(docs), "formats": request.formats})

    # 1. content analysis (and per-document input checks), chunk by chunk
    analyzed = [f.result() for f in analyze_chunk.map(chunks, labels)]
    learned = load_adjustments()

    # 2-4. every (format, chunk) at once: compress, roundtrip quality, bounded re-compression.
    futures = {
        fmt: [
            compress_chunk.submit(
                pack(c), fmt, request.parameters(fmt), adjustments_for(c, fmt, learned), lbl
            )
            for c, lbl in zip(analyzed, labels, strict=True)
        ]
        for fmt in request.formats
    }
    progress = Progress(len(analyzed) * len(request.formats), "SPR compression")
    per_format, cached = [], 0
    for fmt_futures in futures.values():
        merged: dict = {}
        for future in fmt_futures:
            merged.update(future.result())
            cached += future.state.name == "Cached"
            progress.advance()
        per_format.append(merged)
    results = assemble([d for chunk in analyzed for d in chunk], per_format)

    # 5. learned per-content-type ratio adjustments, persisted for the next run
    if request.learn:
        learned = save_adjustments(
            quote(results), request.optimization_step, request.quality_threshold, run_id
        )

    # 6. exports, .spr files, coordination log, UI
    spr_files = write_spr_files(quote(results), run_id, trace_id) if request.write_spr_files else []
    export = export_results(quote(results), run_id, request.export_formats)
    stats = report.stats(results)
    log_size = log_run(run_id, trace_id, {**stats, "documents": len(results)})
    publish_table(
        f"spr-{run_id}", report.table_rows(results), "SPR results per document and format"
    )
    publish_markdown(
        f"spr-report-{run_id}",
        report.markdown_report(results, run_id, learned, request.quality_threshold),
        "SPR pipeline report",
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
        compressed_chunks=len(analyzed) * len(request.formats),
        **stats,
    )


if __name__ == "__main__":
    result = spr_pipeline(sample_request())
    print(result.model_dump_json(indent=2, exclude={"documents"}))
