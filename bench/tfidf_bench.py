"""SPR's TF-IDF fit vs scikit-learn's `TfidfVectorizer`, on the SPR bench corpus, in one run.

Both fit the same definition (smooth IDF over a document's sentences) on the same content
terms; ours builds the term matrix from the already-split sentences and hands it to
`TfidfTransformer`. Prints ms per document (CPU, best of `--repeat` passes, the two
interleaved), the ratio, and the largest IDF difference between the two (should be ~1e-15).

    .venv/bin/python bench/tfidf_bench.py [--repeat 7]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sklearn.feature_extraction.text import TfidfVectorizer
from spr_bench import corpus

from tasks.spr.text import content_terms, sentences
from tasks.spr.tfidf import fit_sentence_tfidf


def vectorizer_idf(sentence_terms: list[list[str]]) -> dict[str, float]:
    model = TfidfVectorizer(analyzer=lambda terms: terms, norm="l2").fit(sentence_terms)
    idf = model.idf_.tolist()
    return {term: idf[index] for term, index in model.vocabulary_.items()}


def ours_idf(sentence_terms: list[list[str]]) -> dict[str, float]:
    model = fit_sentence_tfidf(sentence_terms)
    return model.idf() if model is not None else {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    docs = [[content_terms(s.text) for s in sentences(text)] for _, text in corpus()]
    systems = {"TfidfVectorizer": vectorizer_idf, "ours (TfidfTransformer)": ours_idf}
    best = dict.fromkeys(systems, float("inf"))
    for _ in range(args.repeat):
        for name, fit in systems.items():
            started = time.process_time()
            for doc in docs:
                fit(doc)
            best[name] = min(best[name], time.process_time() - started)
    worst = 0.0
    for doc in docs:
        a, b = vectorizer_idf(doc), ours_idf(doc)
        assert a.keys() == b.keys()
        worst = max([worst, *(abs(a[t] - b[t]) for t in a)])
    print(f"corpus: {len(docs)} documents; CPU per document, best of {args.repeat} passes")
    for name, seconds in best.items():
        print(f"{name:26} {seconds / len(docs) * 1000:7.3f} ms")
    ratio = best["TfidfVectorizer"] / best["ours (TfidfTransformer)"]
    print(f"ratio vectorizer / ours: {ratio:.2f}x; largest IDF difference: {worst:.1e}")


if __name__ == "__main__":
    main()
