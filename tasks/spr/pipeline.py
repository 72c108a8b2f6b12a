"""One document through the SPR pipeline, as plain functions the Prefect tasks call:
decode and check → analyze → per format: compress, decompress, score, and re-compress at a
higher ratio (bounded) while quality is under the threshold. Pure Python, no Prefect."""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import TypeAdapter

from tasks.errors import InvalidInput
from tasks.spr.analyze import analyze
from tasks.spr.files import read_document_file
from tasks.spr.llm import ClaudeFactory, compress_with, decompress_with
from tasks.spr.models import (
    MAX_DOCUMENT_BYTES,
    MIN_DOCUMENT_WORDS,
    AnalyzedDocument,
    CompressionParams,
    DocumentFile,
    DocumentResult,
    FormatResult,
    OptimizationStep,
    RatioAdjustments,
    SPRDocument,
)
from tasks.spr.quality import quality
from tasks.spr.text import word_count

_CHUNK = TypeAdapter(list[AnalyzedDocument])


def decode(doc: SPRDocument) -> str:
    """The document's text, or `InvalidInput` saying why it cannot be compressed."""
    raw = doc.content
    size = len(raw) if isinstance(raw, bytes) else len(raw.encode("utf-8", "surrogatepass"))
    if size > MAX_DOCUMENT_BYTES:
        raise InvalidInput(
            f"document {doc.id!r} is {size / 2**20:.1f} MiB; the limit is "
            f"{MAX_DOCUMENT_BYTES / 2**20:.0f} MiB — split it into smaller documents"
        )
    if isinstance(raw, bytes):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidInput(
                f"document {doc.id!r} is not UTF-8 text (invalid byte at offset {exc.start}); "
                "binary files cannot be compressed"
            ) from exc
    else:
        text = raw
    control = sum(1 for c in text if ord(c) < 32 and c not in "\n\r\t\f")
    if "\x00" in text or (text and control / len(text) > 0.05):
        raise InvalidInput(f"document {doc.id!r} looks binary ({control} control characters)")
    if not text.strip():
        what = "empty" if not text else "whitespace only"
        raise InvalidInput(f"document {doc.id!r} is {what}; give it some text")
    words = word_count(text)
    if words < MIN_DOCUMENT_WORDS:
        raise InvalidInput(
            f"document {doc.id!r} has {words} words; at least {MIN_DOCUMENT_WORDS} are needed"
        )
    return text


def chunked(docs: list, size: int) -> list[tuple[str, list]]:
    """(label, documents) batches of `size`, labelled by position ("docs-1-25")."""
    return [
        (f"docs-{i + 1}-{i + len(docs[i : i + size])}", docs[i : i + size])
        for i in range(0, len(docs), size)
    ]


def pack(docs: list[AnalyzedDocument]) -> str:
    """A chunk as one JSON string, for a task input. Prefect walks model-valued task inputs
    looking for futures (measured: ~40 % overhead on 1,000 documents); a string is a leaf,
    hashes stably for the cache key, and crosses to Dask workers unchanged (a `quote()` wrapper
    does not)."""
    return _CHUNK.dump_json(docs).decode()


def unpack(packed: str) -> list[AnalyzedDocument]:
    return _CHUNK.validate_json(packed)


def analyze_document(doc: SPRDocument | DocumentFile) -> AnalyzedDocument:
    """Decode, check and analyze one document (inline, or a file read here)."""
    try:
        text = decode(
            read_document_file(doc.path, doc.id) if isinstance(doc, DocumentFile) else doc
        )
    except (InvalidInput, OSError) as exc:
        return AnalyzedDocument(id=doc.id, error=str(exc))
    return AnalyzedDocument(id=doc.id, text=text, analysis=analyze(text))


def compress_format(
    doc: AnalyzedDocument,
    params: CompressionParams,
    adjustment: float = 0.0,
    claude: ClaudeFactory | None = None,
) -> FormatResult:
    """Compress one document into `params.format`, raising the ratio by `optimization_step`
    (at most `max_optimization_steps` times) while quality < `quality_threshold`."""
    assert doc.analysis is not None
    ratio = min(1.0, round(params.ratio + adjustment, 4))
    steps: list[OptimizationStep] = []
    while True:
        compression = compress_with(
            doc.text,
            params.format,
            ratio,
            params.compressor,
            strategy=doc.analysis.strategy,
            claude=claude,
        )
        # Claude decompresses only what Claude compressed; a fallback stays offline
        mode = "extractive" if compression.source == "extractive" else params.compressor
        prose, decompressor, decompression_fallback = decompress_with(
            compression.spr_text, mode, claude
        )
        report = quality(
            doc.text,
            compression.spr_text,
            decompressed=prose,
            penalise_unsupported=decompressor == "claude",
        )
        passed = report.quality >= params.quality_threshold
        steps.append(
            OptimizationStep(
                target_ratio=ratio,
                achieved_ratio=compression.achieved_ratio,
                quality=report.quality,
                passed=passed,
            )
        )
        if passed or len(steps) > params.max_optimization_steps or ratio >= 1.0:
            break
        ratio = min(1.0, round(ratio + params.optimization_step, 4))
    return FormatResult(
        format=params.format,
        requested_ratio=params.ratio,
        target_ratio=ratio,
        achieved_ratio=compression.achieved_ratio,
        original_words=compression.original_words,
        compressed_words=compression.compressed_words,
        statements=len(compression.statements),
        quality=report,
        passed=passed,
        efficiency=round(report.quality * (1 - compression.achieved_ratio), 4),
        optimization_steps=steps,
        protected_sentences=compression.protected_sentences,
        protected_total=compression.protected_total,
        compressor=params.compressor,
        source=compression.source,
        model=compression.model,
        fallback_reason=compression.fallback_reason,
        decompressor=decompressor,
        decompression_fallback_reason=decompression_fallback,
        compression_ms=compression.compression_ms,
        spr_text=compression.spr_text,
        decompressed=prose,
    )


def compress_documents(
    docs: Iterable[AnalyzedDocument],
    params: CompressionParams,
    adjustments: RatioAdjustments,
    claude: ClaudeFactory | None = None,
) -> dict[str, FormatResult | str]:
    """Each processable document's result in `params.format`, or the error that stopped it."""
    out: dict[str, FormatResult | str] = {}
    for doc in docs:
        if doc.error or doc.analysis is None:
            continue
        adjustment = adjustments.get(doc.analysis.content_type, {}).get(params.format, 0.0)
        try:
            out[doc.id] = compress_format(doc, params, adjustment, claude)
        except InvalidInput as exc:
            out[doc.id] = f"{params.format}: {exc}"
    return out


def assemble(
    analyzed: list[AnalyzedDocument], per_format: list[dict[str, FormatResult | str]]
) -> list[DocumentResult]:
    """One DocumentResult per document, in request order, with every format's outcome."""
    results = []
    for doc in analyzed:
        result = DocumentResult(document_id=doc.id, analysis=doc.analysis, error=doc.error)
        errors = []
        for outcome in per_format:
            value = outcome.get(doc.id)
            if isinstance(value, FormatResult):
                result.formats.append(value)
            elif isinstance(value, str):
                errors.append(value)
        if errors and result.error is None:
            result.error = "; ".join(errors)
        results.append(result)
    return results
