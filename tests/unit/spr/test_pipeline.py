import httpx2
import pytest

from tasks.spr.learning import learn_adjustments, relevant_adjustments
from tasks.spr.models import MAX_DOCUMENT_BYTES, CompressionParams, SPRDocument, SPRRequest
from tasks.spr.pipeline import (
    analyze_document,
    assemble,
    chunked,
    compress_documents,
    compress_format,
)
from tests.unit.spr.anthropic_api import answer, api, status, tool_of


def _params(fmt: str = "standard", **overrides) -> CompressionParams:
    return SPRRequest(content="", **overrides).compression_params(fmt)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "is empty"),
        ("   \n\t  ", "is whitespace only"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe", "is not UTF-8 text"),
        ("abc\x00\x01\x02def" * 10, "looks binary"),
        ("word " * (MAX_DOCUMENT_BYTES // 4), "MiB; the limit is 2 MiB"),
        ("too short to compress", "has 4 words; at least 20"),
    ],
)
def test_bad_document_gets_a_clear_error(content, message):
    result = analyze_document(SPRDocument(id="bad", content=content))
    assert result.error is not None and message in result.error
    assert "'bad'" in result.error


def test_ten_megabyte_document_is_rejected_by_size(reference_docs):
    big = SPRDocument(id="big", content=b"x" * (10 * 2**20))
    assert "10.0 MiB" in analyze_document(big).error


def test_quality_below_threshold_raises_the_ratio_step_by_step_and_stops(reference_docs):
    params = _params(quality_threshold=0.99, max_optimization_steps=3, optimization_step=0.05)
    doc = analyze_document(SPRDocument(id="d", content=reference_docs[3]))
    result = compress_format(doc, params)
    ratios = [s.target_ratio for s in result.optimization_steps]
    assert ratios == pytest.approx([0.15, 0.2, 0.25, 0.3])
    assert not result.passed
    qualities = [s.quality for s in result.optimization_steps]
    assert qualities[-1] > qualities[0]
    for step in result.optimization_steps:
        assert abs(step.achieved_ratio - step.target_ratio) <= 0.03


def test_passing_document_is_compressed_once(reference_docs):
    doc = analyze_document(SPRDocument(id="d", content=reference_docs[3]))
    result = compress_format(doc, _params("extended", quality_threshold=0.1))
    assert len(result.optimization_steps) == 1 and result.passed
    assert result.efficiency == pytest.approx(
        result.quality.quality * (1 - result.achieved_ratio), abs=1e-3
    )


def test_learned_adjustment_starts_the_next_run_higher(reference_docs):
    request = SPRRequest(content="", quality_threshold=0.99, max_optimization_steps=2)
    params = request.compression_params("standard")
    docs = [
        analyze_document(SPRDocument(id=f"d{i}", content=t))
        for i, t in enumerate(reference_docs[:3])
    ]
    results = assemble(docs, [compress_documents(docs, params, {})])
    learned = learn_adjustments({}, results, request.optimization_step, request.quality_threshold)
    ctype = docs[0].analysis.content_type
    assert learned[ctype]["standard"] > 0
    again = compress_documents(docs[:1], params, learned)["d0"]
    assert again.optimization_steps[0].target_ratio == pytest.approx(
        0.15 + learned[ctype]["standard"], abs=1e-4
    )


def test_unneeded_adjustment_decays(reference_docs):
    docs = [analyze_document(SPRDocument(id="d", content=reference_docs[0]))]
    ctype = docs[0].analysis.content_type
    previous = {ctype: {"extended": 0.2}}
    params = _params("extended", quality_threshold=0.1)
    results = assemble(docs, [compress_documents(docs, params, previous)])
    learned = learn_adjustments(previous, results, 0.05, 0.1)
    assert learned[ctype]["extended"] < 0.2


def test_a_format_too_big_for_a_short_document_is_reported_not_raised():
    text = (
        "The deploy failed because the config file lacked a port. We added it and redeployed. " * 3
    )
    request = SPRRequest(content="", formats=["standard", "extended"])
    docs = [analyze_document(SPRDocument(id="short", content=text))]
    per_format = [
        compress_documents(docs, request.compression_params(f), {}) for f in request.formats
    ]
    (result,) = assemble(docs, per_format)
    assert [f.format for f in result.formats] == ["extended"]
    assert "standard" in result.error and "too short" in result.error


def test_target_ratio_outside_0_1_is_rejected_with_a_clear_message():
    from pydantic import ValidationError

    for bad in (0, 1.5, -1):
        with pytest.raises(ValidationError, match="target_ratio"):
            SPRRequest(content="x", target_ratio=bad)


def test_chunks_are_labelled_by_position():
    assert chunked(list("abcdefg"), 3) == [
        ("docs-1-3", ["a", "b", "c"]),
        ("docs-4-6", ["d", "e", "f"]),
        ("docs-7-7", ["g"]),
    ]


def test_auto_chunk_size_aims_at_eight_chunks_of_10_to_200():
    request = SPRRequest(content="")
    assert [request.chunk_size_for(n) for n in (5, 100, 1000, 5000)] == [10, 13, 125, 200]
    assert SPRRequest(content="", chunk_size=7).chunk_size_for(1000) == 7


def test_a_chunk_sees_only_its_own_types_adjustments_in_the_learned_shape(reference_docs):
    doc = analyze_document(SPRDocument(id="d", content=reference_docs[0]))
    ctype = doc.analysis.content_type
    learned = {ctype: {"standard": 0.05, "minimal": 0.02}, "business": {"standard": 0.1}}
    assert relevant_adjustments([doc], "standard", learned) == {ctype: {"standard": 0.05}}


def test_compression_params_hold_only_what_one_format_depends_on():
    request = SPRRequest(content="", target_ratio=0.2, export_formats=["csv"])
    minimal = request.compression_params("minimal")
    assert minimal == SPRRequest(content="").compression_params("minimal")
    assert request.compression_params("standard").ratio == 0.2


def test_large_inline_batches_are_pointed_to_paths():
    from pydantic import ValidationError

    docs = [SPRDocument(id=f"d{i}", content="word " * 50_000) for i in range(2)]
    with pytest.raises(ValidationError, match="pass large batches as `paths`"):
        SPRRequest(documents=docs)


@pytest.fixture
def anthropic_key(monkeypatch):
    monkeypatch.setenv("REACTOR_ANTHROPIC_API_KEY", "sk-ant-test-0123456789")
    monkeypatch.setenv("REACTOR_LLM_MAX_RETRIES", "0")


def test_a_decompression_fallback_keeps_its_reason(reference_docs, anthropic_key):
    def handler(body: dict, n: int) -> httpx2.Response:
        return answer(body) if tool_of(body) == "write_spr" else status(429)

    factory, _ = api(handler)
    doc = analyze_document(SPRDocument(id="d", content=reference_docs[3]))
    result = compress_format(
        doc, _params(compressor="claude", quality_threshold=0.0), claude=factory
    )
    assert result.source == "claude" and result.fallback_reason is None
    assert result.decompressor == "extractive"
    assert "HTTP 429" in result.decompression_fallback_reason
    assert result.fallback_reasons == [f"decompression: {result.decompression_fallback_reason}"]


def test_a_compression_fallback_decompresses_offline_and_says_why(reference_docs, anthropic_key):
    factory, calls = api(lambda body, n: status(529))
    doc = analyze_document(SPRDocument(id="d", content=reference_docs[3]))
    result = compress_format(doc, _params(compressor="auto", quality_threshold=0.0), claude=factory)
    assert (result.compressor, result.source, result.decompressor) == (
        "auto",
        "extractive",
        "extractive",
    )
    assert "HTTP 529" in result.fallback_reason
    assert result.decompression_fallback_reason is None
    assert [tool_of(c) for c in calls] == [
        "write_spr"
    ]  # the fallback is not decompressed by Claude
