"""Which files a batch holds and the ids they get."""

from pathlib import Path

import pytest

from tasks.errors import InvalidInput
from tasks.spr.files import batch_documents, batch_files
from tasks.spr.models import DocumentFile, SPRDocument, SPRRequest
from tasks.spr.pipeline import analyze_document

TEXT = "The gateway retries HTTP 503 responses three times with a 250 ms backoff. " * 5


def _write(path: Path, text: str = TEXT) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_one_directory_keeps_plain_file_names_as_ids(tmp_path):
    _write(tmp_path / "docs" / "b.txt")
    _write(tmp_path / "docs" / "a.txt")
    _write(tmp_path / "docs" / ".hidden")
    assert [f.id for f in batch_files([tmp_path / "docs"])] == ["a.txt", "b.txt"]


def test_equal_names_in_two_folders_are_ids_relative_to_the_batch_root(tmp_path):
    _write(tmp_path / "a" / "notes.txt")
    _write(tmp_path / "b" / "notes.txt")
    single = _write(tmp_path / "c" / "deep" / "notes.txt")
    files = batch_files([tmp_path / "a", tmp_path / "b", single])
    assert [f.id for f in files] == ["a/notes.txt", "b/notes.txt", "c/deep/notes.txt"]


def test_the_same_file_given_twice_is_one_document(tmp_path):
    doc = _write(tmp_path / "docs" / "a.txt")
    assert [f.id for f in batch_files([tmp_path / "docs", doc])] == ["a.txt"]


def test_a_missing_path_is_named(tmp_path):
    with pytest.raises(InvalidInput, match="nowhere: no such file or directory"):
        batch_files([tmp_path / "nowhere"])


def test_an_explicit_dot_file_is_a_per_document_error(tmp_path):
    hidden = _write(tmp_path / ".env")
    (file,) = batch_files([hidden])
    analyzed = analyze_document(file)
    assert analyzed.id == ".env" and analyzed.analysis is None
    assert "hidden file" in analyzed.error


def test_a_file_id_that_is_also_an_inline_id_is_refused(tmp_path):
    _write(tmp_path / "docs" / "a.txt")
    request = SPRRequest(
        documents=[SPRDocument(id="a.txt", content=TEXT)], paths=[tmp_path / "docs"]
    )
    with pytest.raises(InvalidInput, match=r"\['a.txt'\] are both inline documents and files"):
        batch_documents(request)


def test_a_file_is_read_and_analyzed_under_its_batch_id(tmp_path):
    file = DocumentFile(id="a/notes.txt", path=_write(tmp_path / "a" / "notes.txt"))
    analyzed = analyze_document(file)
    assert analyzed.id == "a/notes.txt" and analyzed.error is None
    assert analyzed.analysis.word_count == 13 * 5


@pytest.mark.parametrize("bad", ["../x", "/etc/passwd", "a/../b", ".env", "a/.git/x", "a\\b"])
def test_document_ids_are_relative_paths_of_plain_names(bad):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="must be a relative path"):
        SPRDocument(id=bad, content=TEXT)
