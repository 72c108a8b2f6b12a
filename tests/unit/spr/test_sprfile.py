import pytest

from tasks.errors import InvalidInput
from tasks.spr import compress
from tasks.spr.decompress import decompress
from tasks.spr.sprfile import parse_spr, render_spr, validate_spr

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def _file(reference_docs):
    result = compress(reference_docs[0], "standard")
    text = render_spr(
        result.statements,
        original_words=result.original_words,
        target_ratio=result.target_ratio,
        format="standard",
        trace_id=TRACE,
        document_id="doc-1",
        compressor="extractive",
    )
    return result, text


def test_spr_file_has_the_standard_header_and_parses_back(reference_docs):
    result, text = _file(reference_docs)
    assert text.startswith("# SPR Compression Result\n# Original: ")
    for field in ("Compressed:", "Ratio:", "Format: standard", "Generated:", f"Trace ID: {TRACE}"):
        assert field in text
    spr = parse_spr(text)
    assert spr.statements == result.statements
    assert spr.trace_id == TRACE
    assert validate_spr(spr) == []


def test_tampered_body_fails_validation(reference_docs):
    _, text = _file(reference_docs)
    spr = parse_spr(text + "an extra statement that was not counted\n")
    assert any("compressed words" in p for p in validate_spr(spr))


def test_missing_header_field_is_named(reference_docs):
    _, text = _file(reference_docs)
    broken = "\n".join(line for line in text.splitlines() if not line.startswith("# Format"))
    with pytest.raises(InvalidInput, match="Format"):
        parse_spr(broken)


def test_decompression_adds_no_template_filler(reference_docs):
    result, _ = _file(reference_docs)
    prose = decompress(result.spr_text)
    source_words = {w.lower().strip(".") for s in result.statements for w in s.split()}
    prose_words = {w.lower().strip(".") for w in prose.split()}
    assert prose_words <= source_words
    assert len(prose.split()) == result.compressed_words


def test_write_spr_files_returns_the_paths_and_leaves_the_results_alone(reference_docs, tmp_path):
    from tasks.spr.models import SPRDocument, SPRRequest
    from tasks.spr.pipeline import analyze_document, assemble, compress_documents
    from tasks.spr.sprfile import with_spr_files, write_spr_files

    docs = [analyze_document(SPRDocument(id="a/notes.txt", content=reference_docs[0]))]
    params = SPRRequest(content="").compression_params("standard")
    results = assemble(docs, [compress_documents(docs, params, {})])
    before = [r.model_dump() for r in results]
    written = write_spr_files(results, tmp_path / "run", TRACE)
    assert [r.model_dump() for r in results] == before
    path = written["a/notes.txt"]["standard"]
    assert path == tmp_path / "run" / "a" / "notes.txt.standard.spr"
    assert validate_spr(parse_spr(path.read_text())) == []
    (linked,) = with_spr_files(results, written)
    assert linked.formats[0].spr_file == path and results[0].formats[0].spr_file is None
