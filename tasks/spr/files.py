"""Reading documents from disk for the CLI and the samples. Files are read as bytes, so a
binary or non-UTF-8 file becomes a per-document error later instead of a crash here."""

from __future__ import annotations

from pathlib import Path

from tasks.errors import InvalidInput
from tasks.spr.models import MAX_DOCUMENT_BYTES, SPRDocument


def load_document(path: Path) -> SPRDocument:
    """The file as a document (id = file name); `InvalidInput` if it is over the size limit."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    size = path.stat().st_size
    if size > MAX_DOCUMENT_BYTES:
        raise InvalidInput(
            f"document {path.name!r} is {size / 2**20:.1f} MiB; the limit is "
            f"{MAX_DOCUMENT_BYTES / 2**20:.0f} MiB — split it into smaller documents"
        )
    # never read more than the limit + 1 byte: the size check needs no more
    with open(path, "rb") as fh:
        data = fh.read(MAX_DOCUMENT_BYTES + 1)
    return SPRDocument(id=path.name, content=data)


def document_files(directory: Path) -> list[Path]:
    """Every regular, non-hidden file directly in `directory`, in name order."""
    if not directory.is_dir():
        raise InvalidInput(f"{directory} is not a directory")
    files = sorted(p for p in directory.iterdir() if p.is_file() and not p.name.startswith("."))
    if not files:
        raise InvalidInput(f"{directory} has no documents")
    return files


def expand_paths(paths: list[Path]) -> list[Path]:
    """Files as given, directories as their files; a missing path is a clear error."""
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            out.extend(document_files(path))
        elif path.is_file():
            out.append(path)
        else:
            raise InvalidInput(f"{path}: no such file or directory")
    return out


def load_documents(directory: Path) -> list[SPRDocument]:
    return [load_document(p) for p in document_files(directory)]
