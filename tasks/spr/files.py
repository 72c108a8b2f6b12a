"""Reading documents from disk for the CLI and the samples. Files are read as bytes, so a
binary or non-UTF-8 file becomes a per-document error later instead of a crash here."""

from __future__ import annotations

from pathlib import Path

from tasks.errors import InvalidInput
from tasks.spr.models import MAX_DOCUMENT_BYTES, SPRDocument


def load_document(path: Path) -> SPRDocument:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    # never read more than the limit + 1 byte: the size check needs no more
    with open(path, "rb") as fh:
        data = fh.read(MAX_DOCUMENT_BYTES + 1)
    return SPRDocument(id=path.name, content=data)


def load_documents(directory: Path) -> list[SPRDocument]:
    """Every regular, non-hidden file directly in `directory`, in name order."""
    if not directory.is_dir():
        raise InvalidInput(f"{directory} is not a directory")
    files = sorted(p for p in directory.iterdir() if p.is_file() and not p.name.startswith("."))
    if not files:
        raise InvalidInput(f"{directory} has no documents")
    return [load_document(p) for p in files]
