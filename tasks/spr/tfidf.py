"""The one TF-IDF definition the compressor and the quality metric share: scikit-learn's, over a
document's sentences as the corpus (smooth IDF, `ln((1 + n) / (1 + df)) + 1`), on the content
terms of `tasks.spr.text`. The compressor weighs terms with it; the quality metric's semantic
coverage is the cosine of two documents' vectors in it. Pure Python, no Prefect.

The sentences arrive already split into terms, so the term matrix is built here and handed to
scikit-learn's `TfidfTransformer` (the IDF and the l2 norm) rather than to `TfidfVectorizer`:
the vectorizer's own counting and checks cost about twice as much per document over the SPR
bench corpus, for identical IDF values (`bench/tfidf_bench.py`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

# imported where used: numpy, scipy and scikit-learn take seconds to load, and every importer of
# tasks.spr (the CLI's `.spr` checks and help among them) would pay for them
if TYPE_CHECKING:
    from scipy.sparse import csr_matrix
    from sklearn.feature_extraction.text import TfidfTransformer


@dataclass(frozen=True)
class SentenceTfidf:
    """A TF-IDF model fitted on one document's sentences: its vocabulary and scikit-learn's
    fitted transformer."""

    vocabulary: dict[str, int]
    transformer: TfidfTransformer

    def idf(self) -> dict[str, float]:
        """Each term's IDF."""
        idf = self.transformer.idf_.tolist()
        return {term: idf[index] for term, index in self.vocabulary.items()}

    def transform(self, documents: Sequence[Sequence[str]]) -> csr_matrix:
        """The l2-normalised TF-IDF vectors of `documents` (lists of terms); terms outside the
        vocabulary are ignored, as scikit-learn's vectorizer does."""
        import sklearn

        counts = _term_matrix(documents, self.vocabulary)
        with sklearn.config_context(skip_parameter_validation=True, assume_finite=True):
            return self.transformer.transform(counts)


def _term_matrix(documents: Sequence[Sequence[str]], vocabulary: dict[str, int]) -> csr_matrix:
    """Term counts, one row per document, over `vocabulary` (other terms are left out)."""
    import numpy as np
    from scipy.sparse import csr_matrix

    indices: list[int] = []
    values: list[float] = []
    indptr = [0]
    for terms in documents:
        row: dict[int, float] = {}
        for term in terms:
            if (index := vocabulary.get(term)) is not None:
                row[index] = row.get(index, 0.0) + 1.0
        indices.extend(row)
        values.extend(row.values())
        indptr.append(len(indices))
    return csr_matrix(
        (np.asarray(values), np.asarray(indices, dtype=np.int32), np.asarray(indptr)),
        shape=(len(documents), len(vocabulary)),
    )


def fit_sentence_tfidf(sentence_terms: Sequence[Sequence[str]]) -> SentenceTfidf | None:
    """A TF-IDF model fitted on a document's sentences (each a list of content terms), giving
    l2-normalised vectors; None when the sentences hold no content term at all."""
    terms = dict.fromkeys(term for sentence in sentence_terms for term in sentence)
    if not terms:
        return None
    import sklearn
    from sklearn.feature_extraction.text import TfidfTransformer

    vocabulary = {term: index for index, term in enumerate(terms)}
    counts = _term_matrix(sentence_terms, vocabulary)
    with sklearn.config_context(skip_parameter_validation=True, assume_finite=True):
        transformer = TfidfTransformer(norm="l2", smooth_idf=True).fit(counts)
    return SentenceTfidf(vocabulary, transformer)
