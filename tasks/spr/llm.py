"""The Claude compressor and decompressor (through `tasks.claude.Claude`), and the
`compressor` choice: extractive | claude | auto. Claude runs only when a key is configured;
any failure (no key, 429/529 after retries, timeout, malformed output) falls back to the
offline path and the result says which ran (`source`) and why (`fallback_reason`).
Pure Python (no Prefect)."""

from __future__ import annotations

import time
from collections.abc import Callable

from pydantic import BaseModel, Field

from tasks.claude import Claude
from tasks.errors import LLMUnavailable
from tasks.settings import Settings, get_settings
from tasks.spr.compress import compress
from tasks.spr.decompress import decompress
from tasks.spr.models import FORMATS, Compression, Source
from tasks.spr.text import word_count

ClaudeFactory = Callable[[], Claude]

SYSTEM = (
    "You write Sparse Priming Representations (SPR): a document distilled into short, "
    "self-contained statements, one idea each, that let an expert reconstruct it. Keep every "
    "number, identifier, name and URL verbatim. No filler, no commentary."
)


class SPRStatements(BaseModel):
    """The document as SPR statements, in the document's order."""

    statements: list[str] = Field(min_length=1, description="one statement per item")


class Reconstruction(BaseModel):
    """Prose reconstructed from SPR statements."""

    text: str = Field(min_length=1, description="the reconstructed document")


def claude_compress(text: str, fmt: str, ratio: float, claude: Claude) -> Compression:
    """Claude's statements, cut to the word budget (statements in order, the last trimmed)."""
    started = time.perf_counter()
    total = word_count(text)
    budget = max(1, round(ratio * total))
    low, high = FORMATS[fmt].words_per_statement
    answer = claude.structured(
        f"Distill this document into SPR statements of {low}-{high} words each, "
        f"about {budget} words in total.\n\n<document>\n{text}\n</document>",
        SPRStatements,
        system=SYSTEM,
        tool="write_spr",
    )
    statements: list[str] = []
    used = 0
    for statement in answer.statements:
        words = statement.split()[: budget - used]
        if len(words) < min(low, budget - used) or not words:
            break
        statements.append(" ".join(words))
        used += len(words)
    if not statements:
        raise LLMUnavailable("Claude returned no usable statements")
    return Compression.measured(
        fmt,
        ratio,
        total,
        statements,
        started,
        source="claude",
        model=claude.settings.anthropic_model,
    )


def claude_decompress(spr_text: str, claude: Claude) -> str:
    answer = claude.structured(
        "Reconstruct the original document as fluent prose from these SPR statements. "
        "Do not add facts that the statements do not support.\n\n"
        f"<spr>\n{spr_text}\n</spr>",
        Reconstruction,
        system=SYSTEM,
        tool="write_reconstruction",
    )
    return answer.text


def planned_source(compressor: str, settings: Settings | None = None) -> str:
    """What will compress for `compressor` before anything runs: "extractive", or
    "claude:<model>" when Claude is asked for and a key is configured (without a key a
    claude|auto request is compressed extractively: a fallback known in advance)."""
    if compressor == "extractive":
        return "extractive"
    settings = settings or get_settings()
    if not settings.claude_configured:
        return "extractive (fallback: no Anthropic API key)"
    return f"claude:{settings.anthropic_model}"


def compress_with(
    text: str,
    fmt: str,
    ratio: float,
    compressor: str = "extractive",
    *,
    strategy: str = "default",
    claude: ClaudeFactory | None = None,
) -> Compression:
    """Compress with the chosen compressor; Claude falls back to the extractive one."""
    if compressor == "extractive":
        return compress(text, fmt, ratio, strategy=strategy)
    try:
        client = claude() if claude is not None else Claude()
        return claude_compress(text, fmt, ratio, client)
    except LLMUnavailable as exc:
        result = compress(text, fmt, ratio, strategy=strategy)
        return result.model_copy(update={"fallback_reason": exc.reason})


def decompress_with(
    spr_text: str, compressor: str, claude: ClaudeFactory | None = None
) -> tuple[str, Source, str | None]:
    """(prose, decompressor that ran, why Claude did not when it was asked to)."""
    if compressor == "extractive":
        return decompress(spr_text), "extractive", None
    try:
        client = claude() if claude is not None else Claude()
        return claude_decompress(spr_text, client), "claude", None
    except LLMUnavailable as exc:
        return decompress(spr_text), "extractive", exc.reason
