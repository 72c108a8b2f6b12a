"""`.spr` files: a header of `# Field: value` lines, then one statement per line. The first
seven lines are the format every SPR consumer reads (title, Original, Compressed, Ratio
(target), Format, Generated, Trace ID); Document and Compressor follow.

    # SPR Compression Result
    # Original: 1200 words
    # Compressed: 180 words
    # Ratio: 0.150 (target 0.150)
    # Format: standard
    # Generated: 2026-11-24T00:00:00+00:00
    # Trace ID: 4bf92f3577b34da6a3ce929d0e0e4736
    # Document: report-1
    # Compressor: extractive

    first statement
    …

Pure Python, no Prefect.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel

from tasks.errors import InvalidInput
from tasks.spr.models import FORMATS, DocumentResult
from tasks.storage import Location, storage_for

TITLE = "# SPR Compression Result"
REQUIRED = ("Original", "Compressed", "Ratio", "Format", "Generated", "Trace ID")
_FIELD = re.compile(r"^#\s*([A-Za-z][A-Za-z ]*):\s*(.*)$")
_RATIO = re.compile(r"^([0-9.]+)\s*\(target\s+([0-9.]+)\)$")
_WORDS = re.compile(r"^(\d+)\s+words$")


class SPRFile(BaseModel):
    document_id: str | None
    original_words: int
    compressed_words: int
    ratio: float
    target_ratio: float
    format: str
    generated: datetime
    trace_id: str | None
    compressor: str | None
    statements: list[str]

    @property
    def spr_text(self) -> str:
        return "\n".join(self.statements)


def render_spr(
    statements: list[str],
    *,
    original_words: int,
    target_ratio: float,
    format: str,
    trace_id: str | None,
    document_id: str | None = None,
    compressor: str | None = None,
    generated: datetime | None = None,
) -> str:
    compressed = sum(len(s.split()) for s in statements)
    ratio = compressed / original_words if original_words else 0.0
    lines = [
        TITLE,
        f"# Original: {original_words} words",
        f"# Compressed: {compressed} words",
        f"# Ratio: {ratio:.3f} (target {target_ratio:.3f})",
        f"# Format: {format}",
        f"# Generated: {(generated or datetime.now(UTC)).isoformat(timespec='seconds')}",
        f"# Trace ID: {trace_id or 'none'}",
    ]
    if document_id:
        lines.append(f"# Document: {document_id}")
    if compressor:
        lines.append(f"# Compressor: {compressor}")
    return "\n".join(lines) + "\n\n" + "\n".join(statements) + "\n"


def parse_spr(text: str, name: str = ".spr file") -> SPRFile:
    """Parse a `.spr` file; `InvalidInput` names the first problem."""
    lines = text.splitlines()
    if not lines or lines[0].strip() != TITLE:
        raise InvalidInput(f"{name}: first line must be {TITLE!r}")
    fields: dict[str, str] = {}
    body_start = len(lines)
    for i, line in enumerate(lines[1:], 1):
        match = _FIELD.match(line)
        if match:
            fields[match.group(1).strip()] = match.group(2).strip()
            continue
        if line.strip() and not line.startswith("#"):
            body_start = i
            break
    missing = [f for f in REQUIRED if f not in fields]
    if missing:
        raise InvalidInput(f"{name}: header lacks {missing}")
    statements = [s.strip() for s in lines[body_start:] if s.strip()]
    try:
        original = int(_WORDS.match(fields["Original"]).group(1))  # type: ignore[union-attr]
        compressed = int(_WORDS.match(fields["Compressed"]).group(1))  # type: ignore[union-attr]
        ratio_match = _RATIO.match(fields["Ratio"])
        ratio, target = float(ratio_match.group(1)), float(ratio_match.group(2))  # type: ignore[union-attr]
        generated = datetime.fromisoformat(fields["Generated"])
    except (AttributeError, ValueError) as exc:
        raise InvalidInput(
            f"{name}: malformed header ({exc}); expected e.g. 'Original: 1200 words', "
            "'Ratio: 0.150 (target 0.150)', an ISO-8601 'Generated'"
        ) from exc
    trace_id = fields["Trace ID"]
    return SPRFile(
        document_id=fields.get("Document"),
        original_words=original,
        compressed_words=compressed,
        ratio=ratio,
        target_ratio=target,
        format=fields["Format"],
        generated=generated,
        trace_id=None if trace_id == "none" else trace_id,
        compressor=fields.get("Compressor"),
        statements=statements,
    )


def validate_spr(spr: SPRFile) -> list[str]:
    """Problems with a parsed file (empty when it is valid)."""
    problems = []
    if spr.format not in FORMATS:
        problems.append(f"format {spr.format!r} is not one of {sorted(FORMATS)}")
    if not spr.statements:
        problems.append("no statements")
    words = sum(len(s.split()) for s in spr.statements)
    if words != spr.compressed_words:
        problems.append(f"header says {spr.compressed_words} compressed words, body has {words}")
    if spr.original_words and abs(words / spr.original_words - spr.ratio) > 0.0015:
        problems.append(f"ratio {spr.ratio} does not match {words}/{spr.original_words}")
    if not 0 < spr.target_ratio <= 1:
        problems.append(f"target ratio {spr.target_ratio} is outside (0, 1]")
    if spr.trace_id is not None and not re.fullmatch(r"[0-9a-f]{32}", spr.trace_id):
        problems.append(f"trace id {spr.trace_id!r} is not 32 hex digits")
    return problems


def statement_stats(spr: SPRFile) -> dict[str, float | int | str]:
    """Statement count and length, and how many fall outside the format's band."""
    lengths = [len(s.split()) for s in spr.statements] or [0]
    low, high = FORMATS[spr.format].words_per_statement if spr.format in FORMATS else (0, 10**6)
    return {
        "statements": len(spr.statements),
        "words": sum(lengths),
        "mean_words_per_statement": round(sum(lengths) / len(lengths), 2),
        "min_words_per_statement": min(lengths),
        "max_words_per_statement": max(lengths),
        "outside_band": sum(1 for n in lengths if not low <= n <= high),
        "band": f"{low}-{high}",
    }


WrittenFiles = dict[str, dict[str, Path | str]]  # document id -> format -> .spr file (or URI)


def spr_file_path(folder: Location, document_id: str, fmt: str) -> Location:
    """`<folder>/<document id>.<format>.spr`; a path-like id (`a/notes.txt`) keeps its folders.
    `folder` is a local path or an object-store URI (tasks/storage.py)."""
    name = f"{document_id}.{fmt}.spr"
    if isinstance(folder, Path):
        path = folder / name
        if not path.resolve().is_relative_to(folder.resolve()):
            raise InvalidInput(f"document id {document_id!r} would write outside {folder}")
        return path
    inside = posixpath.normpath(name)
    if inside.startswith(("/", "../")) or inside == "..":
        raise InvalidInput(f"document id {document_id!r} would write outside {folder}")
    return f"{folder}/{inside}"


def write_spr_files(
    results: Sequence[DocumentResult],
    folder: Location,
    trace_id: str | None,
    generated: datetime | None = None,
) -> WrittenFiles:
    """One `.spr` file per (document, format), each written atomically (one PUT on an object
    store) under `folder`, a path or a URI; returns their paths."""
    generated = generated or datetime.now(UTC)
    storage = storage_for(folder)
    written: WrittenFiles = {}
    files: dict[Path | str, bytes] = {}
    for doc in results:
        for fr in doc.formats:
            text = render_spr(
                fr.spr_text.splitlines(),
                original_words=fr.original_words,
                target_ratio=fr.target_ratio,
                format=fr.format,
                trace_id=trace_id,
                document_id=doc.document_id,
                compressor=fr.source,
                generated=generated,
            )
            path = spr_file_path(folder, doc.document_id, fr.format)
            files[path] = text.encode()
            written.setdefault(doc.document_id, {})[fr.format] = path
    storage.put_many(files)
    return written


def with_spr_files(
    results: Sequence[DocumentResult], written: WrittenFiles
) -> list[DocumentResult]:
    """Copies of `results` whose formats name their `.spr` file."""
    out = []
    for doc in results:
        paths = written.get(doc.document_id, {})
        formats = [fr.model_copy(update={"spr_file": paths.get(fr.format)}) for fr in doc.formats]
        out.append(doc.model_copy(update={"formats": formats}))
    return out
