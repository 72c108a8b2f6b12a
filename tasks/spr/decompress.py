"""The offline decompressor: statements back into prose, with no template filler — each
statement becomes a sentence (capitalised, terminated), grouped into short paragraphs.
Pure Python, no Prefect."""

from __future__ import annotations

import re

STATEMENTS_PER_PARAGRAPH = 4
_CODE_END = re.compile(r"[:;{}()\[\]=,]$")


def _sentence(statement: str) -> str:
    text = statement.strip()
    if not text:
        return ""
    first = text.split()[0]
    if first.isalpha() and first.islower():
        text = text[0].upper() + text[1:]
    if text[-1] not in ".!?" and not _CODE_END.search(text):
        text += "."
    return text


def decompress(spr_text: str) -> str:
    """Prose reassembled from `spr_text` (one statement per line; `#` header lines skipped)."""
    statements = [
        line for line in spr_text.splitlines() if line.strip() and not line.startswith("#")
    ]
    sentences = [s for s in (_sentence(x) for x in statements) if s]
    paragraphs = [
        " ".join(sentences[i : i + STATEMENTS_PER_PARAGRAPH])
        for i in range(0, len(sentences), STATEMENTS_PER_PARAGRAPH)
    ]
    return "\n\n".join(paragraphs)
