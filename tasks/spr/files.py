"""Documents on disk: which files a batch holds, their ids, and reading one. Files are read as
bytes, so a binary or non-UTF-8 file becomes a per-document error later instead of a crash here.
Pure Python, no Prefect."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import ValidationError

from tasks.errors import InvalidInput
from tasks.spr.models import MAX_DOCUMENT_BYTES, DocumentFile, SPRDocument, SPRRequest


def read_document_file(path: Path, doc_id: str | None = None) -> SPRDocument:
    """The file as a document (id `doc_id`, default its name); `InvalidInput` if it is hidden,
    over the size limit or its id is not a valid document id."""
    doc_id = doc_id or path.name
    if any(part.startswith(".") for part in doc_id.split("/")):
        raise InvalidInput(
            f"document {doc_id!r} is a hidden file; hidden files (such as .env) are not "
            "compressed because they often hold secrets — rename it to compress it"
        )
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    size = path.stat().st_size
    if size > MAX_DOCUMENT_BYTES:
        raise InvalidInput(
            f"document {doc_id!r} is {size / 2**20:.1f} MiB; the limit is "
            f"{MAX_DOCUMENT_BYTES / 2**20:.0f} MiB — split it into smaller documents"
        )
    # never read more than the limit + 1 byte: the size check needs no more
    with open(path, "rb") as fh:
        data = fh.read(MAX_DOCUMENT_BYTES + 1)
    try:
        return SPRDocument(id=doc_id, content=data)
    except ValidationError as exc:
        raise InvalidInput(f"document {doc_id!r}: {exc.errors()[0]['msg']}") from exc


def document_files(directory: Path) -> list[Path]:
    """Every regular, non-hidden file directly in `directory`, in name order."""
    if not directory.is_dir():
        raise InvalidInput(f"{directory} is not a directory")
    files = sorted(p for p in directory.iterdir() if p.is_file() and not p.name.startswith("."))
    if not files:
        raise InvalidInput(f"{directory} has no documents")
    return files


def batch_files(paths: list[Path]) -> list[DocumentFile]:
    """The files of `paths` (files as given, directories as their files), each once, with ids
    relative to the batch root: the common folder of the directories and of the files'
    parents. One directory keeps plain file names as ids; `a/notes.txt` and `b/notes.txt`
    stay two documents. A missing path is a clear error."""
    files: list[Path] = []
    roots: list[str] = []
    for path in paths:
        absolute = Path(os.path.abspath(path))  # no symlink resolution: ids follow the paths given
        if absolute.is_dir():
            files.extend(Path(os.path.abspath(p)) for p in document_files(absolute))
            roots.append(str(absolute))
        elif absolute.is_file():
            files.append(absolute)
            roots.append(str(absolute.parent))
        else:
            raise InvalidInput(f"{path}: no such file or directory")
    if not files:
        return []
    root = Path(os.path.commonpath(roots))
    return [DocumentFile(id=p.relative_to(root).as_posix(), path=p) for p in dict.fromkeys(files)]


def batch_documents(request: SPRRequest) -> list[SPRDocument | DocumentFile]:
    """The request's inline documents, then its files; `InvalidInput` names any id that is
    both (every id of a batch names one document: results, rows and .spr files follow it)."""
    inline = request.all_documents()
    files = batch_files(request.paths)
    taken = {d.id for d in inline}
    clash = sorted(f.id for f in files if f.id in taken)
    if clash:
        raise InvalidInput(
            f"document ids {clash} are both inline documents and files of `paths`; "
            "rename the inline documents"
        )
    return [*inline, *files]
