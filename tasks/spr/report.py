"""What a run produces for people and tools: the `spr_results` dataset rows (SPEC §4 schema),
the table artifact rows and the markdown report. Pure Python, no Prefect."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from tasks.export import Column
from tasks.spr.models import DocumentResult

DATASET = "spr_results"
SCHEMA: dict[str, Column] = {
    "run_id": Column.str,
    "document_id": Column.str,
    "content_type": Column.str,
    "format": Column.str,
    "target_ratio": Column.float,
    "achieved_ratio": Column.float,
    "original_words": Column.int,
    "compressed_words": Column.int,
    "quality": Column.float,
    "keyphrase_recall": Column.float,
    "specials_recall": Column.float,
    "semantic_coverage": Column.float,
    "rouge1_recall": Column.float,
    "passed": Column.bool,
    "optimization_steps": Column.json,
    "compressor": Column.str,
    "compression_ms": Column.float,
    "spr_text": Column.str,
    "created_at": Column.timestamp,
}


def records(results: Sequence[DocumentResult], run_id: str, created_at: datetime):
    """One dataset row per (document, format) that was compressed."""
    rows: list[dict[str, Any]] = []
    for doc in results:
        for fr in doc.formats:
            rows.append(
                {
                    "run_id": run_id,
                    "document_id": doc.document_id,
                    "content_type": doc.analysis.content_type if doc.analysis else None,
                    "format": fr.format,
                    "target_ratio": fr.target_ratio,
                    "achieved_ratio": fr.achieved_ratio,
                    "original_words": fr.original_words,
                    "compressed_words": fr.compressed_words,
                    "quality": fr.quality.quality,
                    "keyphrase_recall": fr.quality.keyphrase_recall,
                    "specials_recall": fr.quality.specials_recall,
                    "semantic_coverage": fr.quality.semantic_coverage,
                    "rouge1_recall": fr.quality.rouge1_recall,
                    "passed": fr.passed,
                    "optimization_steps": [s.model_dump() for s in fr.optimization_steps],
                    "compressor": fr.compressor,
                    "compression_ms": fr.compression_ms,
                    "spr_text": fr.spr_text,
                    "created_at": created_at.isoformat(),
                }
            )
    return rows


def table_rows(results: Sequence[DocumentResult]) -> list[dict[str, Any]]:
    """The UI table: one row per (document, format), or per failed document."""
    rows = []
    for doc in results:
        ctype = doc.analysis.content_type if doc.analysis else "-"
        for fr in doc.formats:
            rows.append(
                {
                    "document": doc.document_id,
                    "type": ctype,
                    "format": fr.format,
                    "ratio": f"{fr.achieved_ratio:.3f} ({fr.target_ratio:.2f})",
                    "quality": fr.quality.quality,
                    "passed": fr.passed,
                    "steps": len(fr.optimization_steps) - 1,
                    "efficiency": fr.efficiency,
                    "compressor": fr.compressor,
                }
            )
        if doc.error:
            rows.append({"document": doc.document_id, "type": ctype, "error": doc.error})
    return rows


def stats(results: Sequence[DocumentResult]) -> dict[str, Any]:
    formats = [fr for doc in results for fr in doc.formats]
    qualities = [fr.quality.quality for fr in formats]
    return {
        "processed": sum(1 for d in results if d.formats),
        "failed": sum(1 for d in results if d.error),
        "passed_rate": round(sum(fr.passed for fr in formats) / len(formats), 4) if formats else 0,
        "median_quality": round(statistics.median(qualities), 4) if qualities else None,
    }


def markdown_report(
    results: Sequence[DocumentResult],
    run_id: str,
    learned: dict[str, dict[str, float]],
    threshold: float,
) -> str:
    s = stats(results)
    lines = [
        f"# SPR pipeline run `{run_id}`",
        "",
        f"- documents: {len(results)} ({s['processed']} processed, {s['failed']} with errors)",
        f"- median quality: {s['median_quality']} (threshold {threshold}); "
        f"passed: {s['passed_rate']:.0%}",
        "",
        "| format | docs | median ratio | median quality | keyphrases | num/id | tf-idf | "
        "rouge-1 | median efficiency | re-compressions | top-fifth sentences kept |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    by_format: dict[str, list] = {}
    for doc in results:
        for fr in doc.formats:
            by_format.setdefault(fr.format, []).append(fr)
    for fmt, frs in by_format.items():

        def med(values: list[float]) -> str:
            return f"{statistics.median(values):.3f}"

        lines.append(
            f"| {fmt} | {len(frs)} | {med([f.achieved_ratio for f in frs])} | "
            f"{med([f.quality.quality for f in frs])} | "
            f"{med([f.quality.keyphrase_recall for f in frs])} | "
            f"{med([f.quality.specials_recall for f in frs])} | "
            f"{med([f.quality.semantic_coverage for f in frs])} | "
            f"{med([f.quality.rouge1_recall for f in frs])} | "
            f"{med([f.efficiency for f in frs])} | "
            f"{sum(len(f.optimization_steps) - 1 for f in frs)} | "
            f"{sum(f.protected_sentences for f in frs)}/{sum(f.protected_total for f in frs)} |"
        )
    fallbacks = {fr.fallback_reason for d in results for fr in d.formats if fr.fallback_reason}
    if fallbacks:
        lines += ["", "**Claude fallback:** " + "; ".join(sorted(fallbacks))]
    errors = [d for d in results if d.error]
    if errors:
        lines += ["", "## Errors", ""] + [f"- `{d.document_id}`: {d.error}" for d in errors]
    if learned:
        lines += ["", "## Learned ratio adjustments (persisted)", ""]
        for ctype, per_fmt in sorted(learned.items()):
            shown = ", ".join(f"{f} +{v:.3f}" for f, v in sorted(per_fmt.items()))
            lines.append(f"- {ctype}: {shown}")
    return "\n".join(lines) + "\n"
