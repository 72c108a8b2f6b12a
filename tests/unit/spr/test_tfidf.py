"""One TF-IDF definition: the compressor's term weights and the quality metric's semantic
coverage both come from scikit-learn's TF-IDF over the document's sentences."""

import pytest

from tasks.spr.compress import _term_weights
from tasks.spr.quality import semantic_coverage
from tasks.spr.text import content_terms, sentences


def _vectorizer(**options):
    # imported here: scikit-learn costs each xdist worker 1.2 s when a test module imports it
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(**options)


def test_compressor_term_weights_are_scikit_learns_tfidf_over_sentences(reference_docs):
    text = reference_docs[2]
    sents = sentences(text)
    weights, _ = _term_weights(sents)
    reference = _vectorizer(analyzer=content_terms, norm=None)
    matrix = reference.fit_transform([s.text for s in sents]).sum(axis=0).A1
    total = matrix.sum()
    expected = {t: matrix[i] / total for t, i in reference.vocabulary_.items()}
    assert weights.keys() == expected.keys()
    for term, weight in expected.items():
        assert weights[term] == pytest.approx(weight, rel=1e-12)


def test_semantic_coverage_is_the_cosine_in_that_model(reference_docs):
    text = reference_docs[2]
    candidate = " ".join(text.split()[:80])
    reference = _vectorizer(analyzer=content_terms).fit([s.text for s in sentences(text)])
    vectors = reference.transform([text, candidate])
    expected = float(vectors[0].multiply(vectors[1]).sum())
    assert semantic_coverage(text, candidate) == pytest.approx(expected, rel=1e-12)


def test_a_document_without_content_terms_has_no_weights_and_no_coverage():
    sents = sentences("a an the of to. is it at by.")
    assert _term_weights(sents)[0] == {}
    assert semantic_coverage("a an the of to.", "the") == 0.0


def test_terms_the_sentences_never_use_are_ignored_as_the_vectorizer_does(reference_docs):
    text = reference_docs[2]
    candidate = " ".join(text.split()[:60]) + " zyxwvut quokka frobnicate"
    reference = _vectorizer(analyzer=content_terms).fit([s.text for s in sentences(text)])
    assert "quokka" not in reference.vocabulary_
    vectors = reference.transform([text, candidate])
    expected = float(vectors[0].multiply(vectors[1]).sum())
    assert semantic_coverage(text, candidate) == pytest.approx(expected, rel=1e-12)
