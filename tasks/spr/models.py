"""The SPR models that cross a boundary: the request, the per-format compression parameters,
the documents between tasks, and every result the flow returns."""

from __future__ import annotations

import math
import time
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tasks.export_models import ExportResult, Format
from tasks.storage import StoredAt

SPRFormat = Literal["minimal", "standard", "extended"]
Compressor = Literal["extractive", "claude", "auto"]  # what a request asks for
Source = Literal["extractive", "claude"]  # what actually produced a result
ContentType = Literal[
    "code",
    "technical",
    "documentation",
    "scientific",
    "business",
    "narrative",
    "conversation",
    "data/log",
]
CONTENT_TYPES: tuple[ContentType, ...] = ContentType.__args__  # type: ignore[attr-defined]

# Learned ratio adjustments, one shape everywhere (persisted, per chunk, per document):
# content type -> format -> extra ratio on top of the requested one.
RatioAdjustments = dict[str, dict[str, float]]


class FormatSpec(BaseModel):
    """A format's default word ratio, its ratio band and its words per statement."""

    default_ratio: float
    ratio_band: tuple[float, float]
    words_per_statement: tuple[int, int]


FORMATS: dict[str, FormatSpec] = {
    "minimal": FormatSpec(default_ratio=0.08, ratio_band=(0.05, 0.10), words_per_statement=(3, 7)),
    "standard": FormatSpec(
        default_ratio=0.15, ratio_band=(0.10, 0.20), words_per_statement=(8, 15)
    ),
    "extended": FormatSpec(
        default_ratio=0.30, ratio_band=(0.20, 0.40), words_per_statement=(10, 25)
    ),
}

MIN_DOCUMENT_WORDS = 20
MAX_DOCUMENT_BYTES = 2 * 1024 * 1024  # larger documents are rejected per document
MAX_INLINE_BYTES = 384 * 1024  # inline content of a request (flow parameters are capped at 512 KB)


class QualityReport(BaseModel):
    """The roundtrip quality and each of its components (all in [0, 1]); see docs/spr.md."""

    quality: float
    keyphrase_recall: float
    specials_recall: float  # numbers, identifiers, URLs
    semantic_coverage: float  # TF-IDF cosine
    rouge1_recall: float
    unsupported_share: float = 0.0  # LLM decompressor: share of content words not in the original


class Compression(BaseModel):
    """One document compressed into one format."""

    format: SPRFormat
    target_ratio: float
    achieved_ratio: float
    original_words: int
    compressed_words: int
    statements: list[str]
    protected_sentences: int = 0  # sentences of the top salience fifth that were kept
    protected_total: int = 0
    source: Source = "extractive"
    model: str | None = None  # the Claude model, when Claude compressed
    fallback_reason: str | None = None  # why Claude was asked and the extractive path answered
    compression_ms: float = 0.0

    @property
    def spr_text(self) -> str:
        return "\n".join(self.statements)

    @classmethod
    def measured(
        cls,
        format: str,
        target_ratio: float,
        original_words: int,
        statements: list[str],
        started: float,
        **labels: Any,
    ) -> Compression:
        """`statements` made of a document of `original_words`: the words and ratio counted
        here, the time since `started` (a `time.perf_counter()` reading); `labels` are the
        other fields (source, model, protected sentences)."""
        compressed = sum(len(s.split()) for s in statements)
        return cls(
            format=format,  # type: ignore[arg-type]
            target_ratio=round(target_ratio, 4),
            achieved_ratio=round(compressed / original_words, 4),
            original_words=original_words,
            compressed_words=compressed,
            statements=statements,
            compression_ms=round((time.perf_counter() - started) * 1000, 3),
            **labels,
        )


class ContentAnalysis(BaseModel):
    word_count: int
    content_type: ContentType
    type_scores: dict[str, float]
    complexity: float = Field(ge=0, le=1)
    complexity_label: Literal["low", "medium", "high"]
    language: str
    strategy: str


def check_document_id(value: str) -> str:
    """A document id is a relative POSIX path (a file's path inside its batch, or a plain name):
    no absolute path, no '..', no backslash or NUL, no hidden (dot) segment."""
    parts = PurePosixPath(value).parts
    if (
        not parts
        or value.startswith("/")
        or "\\" in value
        or "\x00" in value
        or any(p in ("..", ".") or p.startswith(".") for p in parts)
    ):
        raise ValueError(
            f"document id {value!r} must be a relative path of plain names "
            "(no leading '/', no '..', no '\\', no segment starting with '.')"
        )
    return value


class SPRDocument(BaseModel):
    """One document. `content` may be bytes (read from a file); it must decode as UTF-8."""

    # bytes travel as base64 in JSON (flow parameters, results): non-UTF-8 content survives
    model_config = ConfigDict(ser_json_bytes="base64", val_json_bytes="base64")

    id: str = Field(min_length=1, max_length=1024)
    content: str | bytes

    @field_validator("id")
    @classmethod
    def _relative_path(cls, value: str) -> str:
        return check_document_id(value)


class DocumentFile(BaseModel):
    """A file of a batch, read inside the analysis task. `id` is its path relative to the
    batch root (the common folder of the request's `paths`), so equal names in different
    folders stay apart."""

    id: str
    path: Path


class CompressionParams(BaseModel):
    """Everything compressing a document into one format depends on besides its text and its
    learned adjustment. It is part of that compression's cache key, so another format's ratio
    or the export options do not invalidate it."""

    model_config = ConfigDict(frozen=True)

    format: SPRFormat
    ratio: float = Field(gt=0, le=1)  # the requested ratio (before learned adjustments)
    quality_threshold: float = Field(default=0.65, ge=0, le=1)
    max_optimization_steps: int = Field(default=3, ge=0, le=10)
    optimization_step: float = Field(default=0.05, gt=0, le=0.5)
    compressor: Compressor = "extractive"


class SPRRequest(BaseModel):
    """What to compress and how. `target_ratio` is the standard format's word ratio; minimal
    and extended use their defaults (0.08, 0.30) unless `format_ratios` sets them."""

    documents: list[SPRDocument] = Field(default_factory=list)
    content: str | None = None
    # files, or directories of files, read inside the tasks: Prefect caps flow parameters at
    # 512 KB, so large batches travel as paths, not inline content
    paths: list[Path] = Field(default_factory=list)
    target_ratio: float = Field(default=0.15, gt=0, le=1)
    format_ratios: dict[SPRFormat, float] = Field(default_factory=dict)
    formats: list[SPRFormat] = Field(default_factory=lambda: ["minimal", "standard", "extended"])
    quality_threshold: float = Field(default=0.65, ge=0, le=1)
    max_optimization_steps: int = Field(default=3, ge=0, le=10)
    optimization_step: float = Field(default=0.05, gt=0, le=0.5)
    export_formats: list[Format] = Field(
        default_factory=lambda: ["json", "jsonl", "csv", "parquet"]
    )
    compressor: Compressor = "extractive"
    chunk_size: int | None = Field(default=None, ge=1, le=1000)  # None: `chunk_size_for(n)`
    write_spr_files: bool = True
    learn: bool = True  # persist per-content-type ratio adjustments between runs

    @field_validator("format_ratios")
    @classmethod
    def _ratios_in_range(cls, value: dict[str, float]) -> dict[str, float]:
        for fmt, ratio in value.items():
            if not 0 < ratio <= 1:
                raise ValueError(f"format_ratios[{fmt}]={ratio} must be in (0, 1]")
        return value

    @field_validator("formats", "export_formats")
    @classmethod
    def _non_empty_unique(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("must list at least one format")
        return list(dict.fromkeys(value))

    @model_validator(mode="after")
    def _has_documents(self) -> SPRRequest:
        if not self.documents and self.content is None and not self.paths:
            raise ValueError(
                "give `documents` (a list of {id, content}), one `content`, or `paths`"
            )
        inline = sum(len(d.content) for d in self.documents) + len(self.content or "")
        if inline > MAX_INLINE_BYTES:
            raise ValueError(
                f"inline documents total {inline / 2**20:.1f} MiB; Prefect caps flow parameters "
                f"at 512 KB, so pass large batches as `paths` (files or directories)"
            )
        ids = [d.id for d in self.documents]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"duplicate document ids {dupes}")
        return self

    def all_documents(self) -> list[SPRDocument]:
        """The inline documents (`content` first, as id "content")."""
        docs = list(self.documents)
        if self.content is not None:
            docs.insert(0, SPRDocument(id="content", content=self.content))
        return docs

    def compression_params(self, fmt: str) -> CompressionParams:
        return CompressionParams(
            format=fmt,  # type: ignore[arg-type]
            ratio=self.ratio_for(fmt),
            quality_threshold=self.quality_threshold,
            max_optimization_steps=self.max_optimization_steps,
            optimization_step=self.optimization_step,
            compressor=self.compressor,
        )

    def chunk_size_for(self, n_documents: int) -> int:
        """Documents per task. Auto: about 8 chunks, 10..200 documents each — every task run
        costs client and server time (measured: 40 chunks of 25 for 1,000 documents cost ~45 %
        over direct calls), while 8 chunks x 3 formats still keep 4 workers busy."""
        if self.chunk_size is not None:
            return self.chunk_size
        return max(10, min(200, math.ceil(n_documents / 8)))

    def ratio_for(self, fmt: str) -> float:
        if fmt in self.format_ratios:
            return self.format_ratios[fmt]  # type: ignore[index]
        return self.target_ratio if fmt == "standard" else FORMATS[fmt].default_ratio


class AnalyzedDocument(BaseModel):
    """A document after decoding and analysis; `error` set when it cannot be processed."""

    id: str
    text: str = ""
    analysis: ContentAnalysis | None = None
    error: str | None = None


class OptimizationStep(BaseModel):
    """One attempt of the adaptive loop: the ratio tried and the quality it reached."""

    target_ratio: float
    achieved_ratio: float
    quality: float
    passed: bool


class FormatResult(BaseModel):
    format: SPRFormat
    requested_ratio: float
    target_ratio: float  # the ratio of the final attempt (after learning and optimisation)
    achieved_ratio: float
    original_words: int
    compressed_words: int
    statements: int
    quality: QualityReport
    passed: bool
    efficiency: float  # quality × (1 − achieved ratio)
    optimization_steps: list[OptimizationStep]
    protected_sentences: int
    protected_total: int
    compressor: Compressor  # what the request asked for
    source: Source  # what compressed it
    model: str | None = None
    fallback_reason: str | None  # why `source` is not what `compressor` asked for
    decompressor: Source = "extractive"
    decompression_fallback_reason: str | None = None  # why Claude did not decompress it
    compression_ms: float
    spr_text: str
    decompressed: str
    spr_file: StoredAt | None = None  # a local path or an object-store URI

    @property
    def fallback_reasons(self) -> list[str]:
        """Every fallback this result took, labelled by step."""
        reasons = []
        if self.fallback_reason:
            reasons.append(f"compression: {self.fallback_reason}")
        if self.decompression_fallback_reason:
            reasons.append(f"decompression: {self.decompression_fallback_reason}")
        return reasons


class DocumentResult(BaseModel):
    document_id: str
    analysis: ContentAnalysis | None = None
    formats: list[FormatResult] = Field(default_factory=list)
    error: str | None = None  # why the document could not be processed (the batch goes on)


class SPRRunResult(BaseModel):
    run_id: str
    trace_id: str | None
    documents: list[DocumentResult]
    processed: int
    failed: int
    passed_rate: float
    median_quality: float | None
    learned_adjustments: RatioAdjustments
    export: ExportResult | None
    spr_files: list[StoredAt]
    coordination_log_size: int | None = None
    compressed_chunks: int = 0  # (chunk, format) compression tasks
    cached_chunks: int = 0  # of which served from the cross-run cache
