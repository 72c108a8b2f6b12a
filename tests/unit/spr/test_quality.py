import pytest

from tasks.spr.quality import quality, rouge1_recall, specials_recall

DOC = (
    "The gateway retries HTTP 503 responses three times with a 250 ms backoff. "
    "Connection pooling keeps 400 TCP connections per backend in pool.yaml. "
    "See https://example.com/runbook for the max_pool_size setting."
)


def test_the_original_scores_one_on_every_component():
    report = quality(DOC, DOC)
    assert report.keyphrase_recall == 1.0
    assert report.specials_recall == 1.0
    assert report.rouge1_recall == 1.0
    assert report.semantic_coverage == pytest.approx(1.0, abs=1e-3)
    assert report.quality == pytest.approx(1.0, abs=1e-3)


def test_unrelated_text_scores_low():
    report = quality(DOC, "Bananas are yellow and grow in warm climates near the sea.")
    assert report.quality < 0.1


def test_quality_is_the_spec_weighted_sum_of_its_components():
    r = quality(DOC, "gateway retries HTTP 503 three times; pool.yaml sets 400 connections")
    expected = (
        0.35 * r.keyphrase_recall
        + 0.25 * r.specials_recall
        + 0.25 * r.semantic_coverage
        + 0.15 * r.rouge1_recall
    )
    assert r.quality == pytest.approx(expected, abs=2e-4)


def test_numbers_identifiers_and_urls_are_recalled_exactly():
    assert specials_recall({"503", "pool.yaml"}, {"503"}) == 0.5
    missing_url = quality(DOC, DOC.replace("https://example.com/runbook", "the runbook"))
    assert missing_url.specials_recall < 1.0


def test_rouge1_recall_clips_repeated_words():
    assert rouge1_recall(["a", "b", "c", "d"], ["a", "a", "a", "a"]) == 0.25


def test_llm_decompressor_is_penalised_for_content_not_in_the_original():
    invented = DOC + " Kubernetes autoscaling doubles capacity every Tuesday at midnight."
    plain = quality(DOC, DOC, decompressed=invented)
    penalised = quality(DOC, DOC, decompressed=invented, penalise_unsupported=True)
    assert penalised.unsupported_share > 0
    assert penalised.quality < plain.quality
