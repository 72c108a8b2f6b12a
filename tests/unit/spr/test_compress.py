import pytest

from tasks.errors import InvalidInput
from tasks.spr import compress, quality
from tasks.spr.models import FORMATS
from tasks.spr.text import special_tokens, word_count

CASES = [("minimal", 0.05), ("minimal", 0.1), ("standard", 0.15), ("extended", 0.3)]


@pytest.mark.parametrize(("fmt", "ratio"), CASES)
def test_achieved_word_ratio_is_within_003_of_target(reference_docs, fmt, ratio):
    for text in reference_docs:
        result = compress(text, fmt, ratio)
        assert abs(result.achieved_ratio - ratio) <= 0.03, (fmt, ratio, result.achieved_ratio)
        assert result.compressed_words == word_count(result.spr_text)


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_statements_stay_in_the_format_words_per_statement_band(reference_docs, fmt):
    low, high = FORMATS[fmt].words_per_statement
    for text in reference_docs:
        for statement in compress(text, fmt).statements:
            assert low <= len(statement.split()) <= high, (fmt, statement)


def test_numbers_and_identifiers_are_covered_better_than_the_lead(reference_docs):
    ours, lead = [], []
    for text in reference_docs:
        result = compress(text, "extended", 0.3)
        lead_text = " ".join(text.split()[: result.compressed_words])
        specials = special_tokens(text)
        if specials:
            ours.append(len(specials & special_tokens(result.spr_text)) / len(specials))
            lead.append(len(specials & special_tokens(lead_text)) / len(specials))
    assert sum(ours) / len(ours) > sum(lead) / len(lead) + 0.2


def test_median_quality_at_ratio_03_reaches_080(reference_docs):
    scores = sorted(
        quality(t, compress(t, "extended", 0.3).spr_text).quality for t in reference_docs
    )
    assert scores[len(scores) // 2] >= 0.8


def test_ratio_one_keeps_essentially_everything(reference_docs):
    result = compress(reference_docs[0], "extended", 1.0)
    assert result.achieved_ratio >= 0.97


def test_compression_is_deterministic(reference_docs):
    assert (
        compress(reference_docs[1], "standard").statements
        == compress(reference_docs[1], "standard").statements
    )


def test_negations_survive_terse_statements():
    text = (
        "The service does not retry requests that failed with HTTP 400. Clients must not "
        "send the same token twice. " * 6
    )
    spr = compress(text, "minimal", 0.3).spr_text
    assert "not" in spr.split()


def test_top_salience_fifth_is_protected(reference_docs):
    result = compress(reference_docs[2], "extended", 0.3)
    assert result.protected_total >= 1
    assert result.protected_sentences >= 1


@pytest.mark.parametrize("ratio", [0, -0.1, 1.01, 3])
def test_target_ratio_outside_0_1_is_rejected(reference_docs, ratio):
    with pytest.raises(InvalidInput, match=r"must be in \(0, 1\]"):
        compress(reference_docs[0], "standard", ratio)


def test_unknown_format_is_named():
    with pytest.raises(InvalidInput, match="'tiny'"):
        compress("word " * 100, "tiny", 0.2)


def test_too_short_for_the_format_says_how_many_words_are_needed():
    with pytest.raises(InvalidInput, match=r"needs ≥ 54 words"):
        compress("one two three four five six seven eight nine ten " * 3, "standard", 0.15)
