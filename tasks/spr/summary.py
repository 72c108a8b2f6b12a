"""The SPR run's summary for people: the results table artifact's rows (one per document and
format), the run's stats and the markdown report. Pure: `prefect_tasks` publishes them."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from tasks.spr.models import DocumentResult, FormatResult, RatioAdjustments

RESULTS_ARTIFACT = "spr-results"
SUMMARY_ARTIFACT = "spr-summary"


def table_rows(results: Sequence[DocumentResult]) -> list[dict[str, Any]]:
    """The UI table: one row per (document, format), or per failed document."""
    out = []
    for doc in results:
        ctype = doc.analysis.content_type if doc.analysis else "-"
        for fr in doc.formats:
            out.append(
                {
                    "document": doc.document_id,
                    "type": ctype,
                    "format": fr.format,
                    "ratio": f"{fr.achieved_ratio:.3f} ({fr.target_ratio:.2f})",
                    "quality": fr.quality.quality,
                    "passed": fr.passed,
                    "steps": len(fr.optimization_steps) - 1,
                    "efficiency": fr.efficiency,
                    "compressor": fr.source,
                }
            )
        if doc.error:
            out.append({"document": doc.document_id, "type": ctype, "error": doc.error})
    return out


def stats(results: Sequence[DocumentResult]) -> dict[str, Any]:
    formats = [fr for doc in results for fr in doc.formats]
    qualities = [fr.quality.quality for fr in formats]
    return {
        "processed": sum(1 for d in results if d.formats),
        "failed": sum(1 for d in results if d.error),
        "passed_rate": round(sum(fr.passed for fr in formats) / len(formats), 4) if formats else 0,
        "median_quality": round(statistics.median(qualities), 4) if qualities else None,
    }


def median_text(values: list[float]) -> str:
    return f"{statistics.median(values):.3f}"


def markdown_report(
    results: Sequence[DocumentResult],
    run_id: str,
    learned: RatioAdjustments,
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
    by_format: dict[str, list[FormatResult]] = {}
    for doc in results:
        for fr in doc.formats:
            by_format.setdefault(fr.format, []).append(fr)
    for fmt, frs in by_format.items():
        lines.append(
            f"| {fmt} | {len(frs)} | {median_text([f.achieved_ratio for f in frs])} | "
            f"{median_text([f.quality.quality for f in frs])} | "
            f"{median_text([f.quality.keyphrase_recall for f in frs])} | "
            f"{median_text([f.quality.specials_recall for f in frs])} | "
            f"{median_text([f.quality.semantic_coverage for f in frs])} | "
            f"{median_text([f.quality.rouge1_recall for f in frs])} | "
            f"{median_text([f.efficiency for f in frs])} | "
            f"{sum(len(f.optimization_steps) - 1 for f in frs)} | "
            f"{sum(f.protected_sentences for f in frs)}/{sum(f.protected_total for f in frs)} |"
        )
    fallbacks = {r for d in results for fr in d.formats for r in fr.fallback_reasons}
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
