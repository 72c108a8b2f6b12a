"""The roundtrip quality metric, each component reported.

    quality = 0.35·keyphrase recall + 0.25·numbers/identifiers/URLs recall
            + 0.25·semantic coverage (TF-IDF cosine) + 0.15·ROUGE-1 recall

ROUGE-1 here is the common "-m -s" variant (Porter-stemmed, stopwords removed, clipped counts).
With an LLM decompressor, content words that are not in the original are penalised.
Pure Python (scikit-learn for TF-IDF, through `tasks.spr.tfidf`), no Prefect.
"""

from __future__ import annotations

import math
from collections import Counter

from tasks.spr.models import QualityReport
from tasks.spr.text import content_terms, keyphrases, sentences, special_tokens
from tasks.spr.tfidf import fit_sentence_tfidf

WEIGHTS = {"keyphrase": 0.35, "specials": 0.25, "semantic": 0.25, "rouge1": 0.15}
HALLUCINATION_WEIGHT = 0.25


def keyphrase_recall(phrases: list[tuple[str, ...]], candidate_terms: set[str]) -> float:
    """Share of `phrases` whose every term appears in the candidate."""
    if not phrases:
        return 1.0
    return sum(all(t in candidate_terms for t in p) for p in phrases) / len(phrases)


def specials_recall(original: set[str], candidate: set[str]) -> float:
    """Share of the original's numbers, identifiers and URLs present in the candidate."""
    return len(original & candidate) / len(original) if original else 1.0


def rouge1_recall(original: list[str], candidate: list[str]) -> float:
    """Clipped unigram overlap over the original's (stemmed, stopword-free) unigrams."""
    if not original:
        return 1.0
    ref, cand = Counter(original), Counter(candidate)
    return sum(min(n, cand[t]) for t, n in ref.items()) / sum(ref.values())


def semantic_coverage(original: str, candidate: str) -> float:
    """TF-IDF cosine between original and candidate; IDF is fitted on the original's sentences
    (`tasks.spr.tfidf`, the compressor's weights) so that terms spread over the whole document
    weigh less than distinctive ones."""
    original_terms = content_terms(original)
    docs = [content_terms(s.text) for s in sentences(original)] or [original_terms]
    model = fit_sentence_tfidf(docs)
    if model is None:  # no content terms at all
        return 0.0
    matrix = model.transform([original_terms, content_terms(candidate)])
    return float(min(1.0, (matrix[0].multiply(matrix[1])).sum()))


def quality(
    original: str,
    spr_text: str,
    *,
    decompressed: str | None = None,
    penalise_unsupported: bool = False,
) -> QualityReport:
    """Score `spr_text` (or its decompressed prose, when given) against `original`.

    `penalise_unsupported` (set for LLM decompressors) subtracts
    `0.25 × share of candidate content words absent from the original`."""
    candidate = decompressed if decompressed is not None else spr_text
    orig_terms = content_terms(original)
    cand_terms = content_terms(candidate)
    cand_set = set(cand_terms)
    kp = keyphrase_recall(keyphrases(original), cand_set)
    sp = specials_recall(special_tokens(original), special_tokens(candidate))
    sem = semantic_coverage(original, candidate)
    r1 = rouge1_recall(orig_terms, cand_terms)
    composite = (
        WEIGHTS["keyphrase"] * kp
        + WEIGHTS["specials"] * sp
        + WEIGHTS["semantic"] * sem
        + WEIGHTS["rouge1"] * r1
    )
    unsupported = 0.0
    if penalise_unsupported and cand_terms:
        known = set(orig_terms)
        unsupported = sum(t not in known for t in cand_terms) / len(cand_terms)
    score = max(0.0, composite - HALLUCINATION_WEIGHT * unsupported)
    return QualityReport(
        quality=_r(score),
        keyphrase_recall=_r(kp),
        specials_recall=_r(sp),
        semantic_coverage=_r(sem),
        rouge1_recall=_r(r1),
        unsupported_share=_r(unsupported),
    )


def _r(x: float) -> float:
    return 0.0 if math.isnan(x) else round(float(x), 4)
