"""The one TF-IDF definition the compressor and the quality metric share: scikit-learn's, over a
document's sentences as the corpus (smooth IDF, `ln((1 + n) / (1 + df)) + 1`), on the content
terms of `tasks.spr.text`. The compressor weighs terms with it; the quality metric's semantic
coverage is the cosine of two documents' vectors in it. Pure Python, no Prefect."""

from __future__ import annotations

from collections.abc import Sequence

from sklearn.feature_extraction.text import TfidfVectorizer


def _terms(terms: Sequence[str]) -> Sequence[str]:
    return terms  # documents arrive already split into content terms


def fit_sentence_tfidf(sentence_terms: Sequence[Sequence[str]]) -> TfidfVectorizer | None:
    """A TF-IDF model fitted on a document's sentences (each a list of content terms), giving
    l2-normalised vectors; None when the sentences hold no content term at all."""
    vectorizer = TfidfVectorizer(analyzer=_terms, norm="l2")
    try:
        return vectorizer.fit(sentence_terms)
    except ValueError:  # empty vocabulary
        return None


def idf_weights(model: TfidfVectorizer) -> dict[str, float]:
    """Each term's IDF in `model`."""
    idf = model.idf_.tolist()
    return {term: idf[index] for term, index in model.vocabulary_.items()}
