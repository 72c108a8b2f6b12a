"""What a run produces for people and tools: the `spr_results` dataset (its row model, from
which the export schema comes), the table artifact rows, the markdown summary, the lines the
run logs, and the metrics it records. Pure Python (OTel for metrics), no Prefect."""

from __future__ import annotations

import itertools
import logging
import statistics
import types
import typing
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from tasks import metrics
from tasks.export import Column
from tasks.spr.models import (
    AnalyzedDocument,
    Compressor,
    DocumentResult,
    FormatResult,
    OptimizationStep,
    RatioAdjustments,
    Source,
)

DATASET = "spr_results"
RESULTS_ARTIFACT = "spr-results"
SUMMARY_ARTIFACT = "spr-summary"
MAX_IDS_LOGGED = 10


class SPRResultRow(BaseModel):
    """One row of `spr_results`: one document compressed into one format."""

    run_id: str
    document_id: str
    content_type: str | None
    format: str
    target_ratio: float
    achieved_ratio: float
    original_words: int
    compressed_words: int
    quality: float
    keyphrase_recall: float
    specials_recall: float
    semantic_coverage: float
    rouge1_recall: float
    passed: bool
    optimization_steps: list[OptimizationStep]
    compressor: Compressor  # requested: extractive | claude | auto
    source: Source  # what compressed it: extractive | claude
    fallback_reason: str | None  # why (compression and/or decompression fell back)
    compression_ms: float
    spr_text: str
    created_at: datetime


_COLUMN_OF = {int: Column.int, float: Column.float, str: Column.str, bool: Column.bool}


def columns(model: type[BaseModel]) -> dict[str, Column]:
    """The export schema of a row model: its fields in order, each typed by its annotation
    (`X | None` as X; Literals of strings as str; datetimes as timestamps; lists, dicts and
    models as JSON)."""
    schema: dict[str, Column] = {}
    for name, field in model.model_fields.items():
        kind: Any = field.annotation
        if typing.get_origin(kind) in (typing.Union, types.UnionType):
            kind = next(a for a in typing.get_args(kind) if a is not type(None))
        if typing.get_origin(kind) is typing.Literal:
            kind = type(typing.get_args(kind)[0])
        if kind is datetime:
            schema[name] = Column.timestamp
        elif kind in _COLUMN_OF:
            schema[name] = _COLUMN_OF[kind]
        else:
            schema[name] = Column.json
    return schema


SCHEMA = columns(SPRResultRow)


def rows(results: Sequence[DocumentResult], run_id: str, created_at: datetime):
    """One dataset row per (document, format) that was compressed."""
    out: list[SPRResultRow] = []
    for doc in results:
        for fr in doc.formats:
            out.append(
                SPRResultRow(
                    run_id=run_id,
                    document_id=doc.document_id,
                    content_type=doc.analysis.content_type if doc.analysis else None,
                    format=fr.format,
                    target_ratio=fr.target_ratio,
                    achieved_ratio=fr.achieved_ratio,
                    original_words=fr.original_words,
                    compressed_words=fr.compressed_words,
                    quality=fr.quality.quality,
                    keyphrase_recall=fr.quality.keyphrase_recall,
                    specials_recall=fr.quality.specials_recall,
                    semantic_coverage=fr.quality.semantic_coverage,
                    rouge1_recall=fr.quality.rouge1_recall,
                    passed=fr.passed,
                    optimization_steps=fr.optimization_steps,
                    compressor=fr.compressor,
                    source=fr.source,
                    fallback_reason="; ".join(fr.fallback_reasons) or None,
                    compression_ms=fr.compression_ms,
                    spr_text=fr.spr_text,
                    created_at=created_at,
                )
            )
    return out


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


def _median(values: list[float]) -> str:
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
            f"| {fmt} | {len(frs)} | {_median([f.achieved_ratio for f in frs])} | "
            f"{_median([f.quality.quality for f in frs])} | "
            f"{_median([f.quality.keyphrase_recall for f in frs])} | "
            f"{_median([f.quality.specials_recall for f in frs])} | "
            f"{_median([f.quality.semantic_coverage for f in frs])} | "
            f"{_median([f.quality.rouge1_recall for f in frs])} | "
            f"{_median([f.efficiency for f in frs])} | "
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


# -- what the run logs (counts, ids and measurements; never document text) ------------------

LogLine = tuple[int, str]


def _ids(ids: Sequence[str]) -> str:
    shown = ", ".join(ids[:MAX_IDS_LOGGED])
    return shown + (f" (+{len(ids) - MAX_IDS_LOGGED} more)" if len(ids) > MAX_IDS_LOGGED else "")


def analysis_story(analyzed: Sequence[AnalyzedDocument]) -> list[LogLine]:
    """The content types found, and each rejected document with its reason."""
    ok = [d.analysis for d in analyzed if d.analysis is not None]
    types_seen = Counter(a.content_type for a in ok)
    found = ", ".join(f"{t} {n}" for t, n in sorted(types_seen.items())) or "none"
    lines = [
        (
            logging.INFO,
            f"analyzed {len(analyzed)} documents: {len(ok)} to compress ({found}), "
            f"{len(analyzed) - len(ok)} rejected",
        )
    ]
    lines += [(logging.WARNING, f"rejected {d.id!r}: {d.error}") for d in analyzed if d.error]
    return lines


def chunk_story(
    fmt: str, label: str, outcome: dict[str, FormatResult | str], cached: bool, threshold: float
) -> list[LogLine]:
    """A (format, document batch) outcome: achieved ratio and quality, every fallback with its
    reason, every optimisation step, and the documents the format could not hold."""
    done = {i: r for i, r in outcome.items() if isinstance(r, FormatResult)}
    where = f"{fmt} {label}"
    lines: list[LogLine] = []
    if done:
        frs = list(done.values())
        lines.append(
            (
                logging.INFO,
                f"{where}: {len(frs)} documents{' (from cache)' if cached else ''}, median ratio "
                f"{_median([f.achieved_ratio for f in frs])} (target "
                f"{_median([f.target_ratio for f in frs])}), median quality "
                f"{_median([f.quality.quality for f in frs])}, "
                f"{sum(f.passed for f in frs)}/{len(frs)} passed (threshold {threshold}), "
                f"re-compressions: {sum(len(f.optimization_steps) - 1 for f in frs)}",
            )
        )
    by_reason: dict[str, list[str]] = {}
    for doc_id, fr in done.items():
        for reason in fr.fallback_reasons:
            by_reason.setdefault(reason, []).append(doc_id)
    for reason, ids in sorted(by_reason.items()):
        lines.append(
            (
                logging.WARNING,
                f"{where}: fallback to the extractive path for {len(ids)} documents "
                f"({_ids(ids)}) — {reason}",
            )
        )
    for doc_id, fr in done.items():
        lines += [(logging.INFO, f"{where} {doc_id!r}: {s}") for s in optimization_story(fr)]
    lines += [
        (logging.WARNING, f"{where} {doc_id!r}: not compressed — {error}")
        for doc_id, error in outcome.items()
        if isinstance(error, str)
    ]
    return lines


def optimization_story(fr: FormatResult) -> list[str]:
    """One line per re-compression step, and how the loop ended (none when it passed at once)."""
    steps = fr.optimization_steps
    if len(steps) < 2:
        return []
    lines = [
        f"quality {a.quality:.3f} below threshold at ratio {a.target_ratio:.2f}; "
        f"re-compressed at {b.target_ratio:.2f} → quality {b.quality:.3f}"
        for a, b in itertools.pairwise(steps)
    ]
    verdict = "passed" if fr.passed else "still below the threshold, the bounded loop stops"
    lines.append(f"after {len(steps)} attempts: {verdict}")
    return lines


def record_metrics(results: Sequence[DocumentResult]) -> None:
    """The achieved ratio and the quality of every (document, format), by format and type."""
    for doc in results:
        ctype = doc.analysis.content_type if doc.analysis else "unknown"
        for fr in doc.formats:
            attributes = {"format": fr.format, "content_type": ctype}
            metrics.spr_ratio.record(fr.achieved_ratio, attributes)
            metrics.spr_quality.record(fr.quality.quality, attributes)
