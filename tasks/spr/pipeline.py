"""One document through the SPR pipeline, as plain functions the Prefect tasks call:
decode and check → analyse → per format: compress, decompress, score, and re-compress at a
higher ratio (bounded) while quality is under the threshold. Also the per-content-type ratio
adjustments learned between runs. Pure Python, no Prefect."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

from pydantic import BaseModel

from tasks.errors import InvalidInput
from tasks.spr.analyze import analyze
from tasks.spr.files import load_document
from tasks.spr.llm import ClaudeFactory, compress_with, decompress_with
from tasks.spr.models import (
    MAX_DOCUMENT_BYTES,
    MIN_DOCUMENT_WORDS,
    ContentAnalysis,
    DocumentResult,
    FormatResult,
    OptimizationStep,
    SPRDocument,
    SPRRequest,
)
from tasks.spr.quality import quality
from tasks.spr.text import word_count

LEARNING_RATE = 0.3
MAX_ADJUSTMENT = 0.3


class AnalyzedDocument(BaseModel):
    """A document after decoding and analysis; `error` set when it cannot be processed."""

    id: str
    text: str = ""
    analysis: ContentAnalysis | None = None
    error: str | None = None


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


def analyze_document(doc: SPRDocument | Path) -> AnalyzedDocument:
    """Decode, check and analyse one document (inline, or a file read here)."""
    doc_id = doc.name if isinstance(doc, Path) else doc.id
    try:
        text = decode(load_document(doc) if isinstance(doc, Path) else doc)
    except (InvalidInput, OSError) as exc:
        return AnalyzedDocument(id=doc_id, error=str(exc))
    return AnalyzedDocument(id=doc_id, text=text, analysis=analyze(text))


def compress_format(
    doc: AnalyzedDocument,
    fmt: str,
    request: SPRRequest,
    adjustment: float = 0.0,
    claude: ClaudeFactory | None = None,
) -> FormatResult:
    """Compress one document into one format, raising the ratio by `optimization_step` (at
    most `max_optimization_steps` times) while quality < `quality_threshold`."""
    assert doc.analysis is not None
    requested = request.ratio_for(fmt)
    ratio = min(1.0, round(requested + adjustment, 4))
    steps: list[OptimizationStep] = []
    while True:
        compression = compress_with(
            doc.text, fmt, ratio, request.compressor, strategy=doc.analysis.strategy, claude=claude
        )
        # Claude decompresses only what Claude compressed; a fallback stays offline
        mode = "extractive" if compression.compressor == "extractive" else request.compressor
        prose, decompressor, _ = decompress_with(compression.spr_text, mode, claude)
        report = quality(
            doc.text,
            compression.spr_text,
            decompressed=prose,
            penalise_unsupported=decompressor == "claude",
        )
        passed = report.quality >= request.quality_threshold
        steps.append(
            OptimizationStep(
                target_ratio=ratio,
                achieved_ratio=compression.achieved_ratio,
                quality=report.quality,
                passed=passed,
            )
        )
        if passed or len(steps) > request.max_optimization_steps or ratio >= 1.0:
            break
        ratio = min(1.0, round(ratio + request.optimization_step, 4))
    return FormatResult(
        format=fmt,  # type: ignore[arg-type]
        requested_ratio=requested,
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
        compressor=compression.compressor,
        source=compression.source,
        fallback_reason=compression.fallback_reason,
        decompressor=decompressor,  # type: ignore[arg-type]
        compression_ms=compression.compression_ms,
        spr_text=compression.spr_text,
        decompressed=prose,
    )


def adjustments_for(
    docs: Iterable[AnalyzedDocument], fmt: str, adjustments: dict[str, dict[str, float]]
) -> dict[str, float]:
    """The learned adjustments that matter to `docs` in `fmt` (content type -> ratio delta), so a
    chunk's cache key changes only when its own adjustments do."""
    types = {d.analysis.content_type for d in docs if d.analysis is not None}
    return {t: adjustments[t][fmt] for t in sorted(types) if fmt in adjustments.get(t, {})}


def compress_documents(
    docs: Iterable[AnalyzedDocument],
    fmt: str,
    request: SPRRequest,
    adjustments: dict[str, dict[str, float]],
    claude: ClaudeFactory | None = None,
) -> dict[str, FormatResult | str]:
    """Each processable document's result in `fmt`, or the error that stopped it."""
    out: dict[str, FormatResult | str] = {}
    for doc in docs:
        if doc.error or doc.analysis is None:
            continue
        adjustment = adjustments.get(doc.analysis.content_type, {}).get(fmt, 0.0)
        try:
            out[doc.id] = compress_format(doc, fmt, request, adjustment, claude)
        except InvalidInput as exc:
            out[doc.id] = f"{fmt}: {exc}"
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


def learn_adjustments(
    previous: dict[str, dict[str, float]],
    results: list[DocumentResult],
    step: float,
    threshold: float,
) -> dict[str, dict[str, float]]:
    """New per-(content type, format) ratio adjustments: an exponential moving average of the
    extra ratio documents needed to pass. A document that passed at once with a margin of 0.05
    reports one step less than the current adjustment, so an unneeded adjustment decays."""
    needed: dict[tuple[str, str], list[float]] = defaultdict(list)
    for doc in results:
        if doc.analysis is None:
            continue
        ctype = doc.analysis.content_type
        for fr in doc.formats:
            current = previous.get(ctype, {}).get(fr.format, 0.0)
            extra = fr.target_ratio - fr.requested_ratio
            if not fr.passed:
                extra += step  # it needed more than the bounded loop tried
            elif len(fr.optimization_steps) == 1 and fr.quality.quality >= threshold + 0.05:
                extra = max(0.0, current - step)
            needed[(ctype, fr.format)].append(extra)
    learned = {k: dict(v) for k, v in previous.items()}
    for (ctype, fmt), extras in needed.items():
        current = learned.get(ctype, {}).get(fmt, 0.0)
        observed = sum(extras) / len(extras)
        value = (1 - LEARNING_RATE) * current + LEARNING_RATE * observed
        # steps of 0.01: an adjustment settles (so repeat runs hit the cache) instead of
        # creeping by fractions of a word forever
        learned.setdefault(ctype, {})[fmt] = round(min(MAX_ADJUSTMENT, max(0.0, value)), 2)
    return learned
