"""The SPR run's dataset `spr_results`, declared once as a row model (its columns and types come
from `tasks.export_schema.schema_of`): one row per document compressed into one format. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from pydantic import BaseModel

from tasks.spr.models import Compressor, DocumentResult, OptimizationStep, Source

DATASET = "spr_results"


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


def rows(
    results: Sequence[DocumentResult], run_id: str, created_at: datetime
) -> list[SPRResultRow]:
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
