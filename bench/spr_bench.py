"""SPR compressor vs peers, side by side in one run, at the same word ratio.

Corpus: real documents that ship offline and were not written for this project — the Python
reference documentation topics (`pydoc_data.topics`) and long stdlib module docstrings.
Peers: lead-N, a seeded random selection, sumy's LexRank and TextRank (given a small regex
tokenizer of ours, since NLTK's punkt data is not available offline). Every system gets exactly
the same word budget, `round(ratio · words)`: peers pick whole sentences in their rank order and
the last one is cut to fit. Quality is tasks.spr.quality (docs/spr.md) for all.

    .venv/bin/python bench/spr_bench.py [--ratios 0.3 0.15] [--limit N] [--repeat 3]
"""

from __future__ import annotations

import argparse
import importlib
import random
import re
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sumy.nlp.stemmers import Stemmer
from sumy.parsers.plaintext import PlaintextParser
from sumy.summarizers.lex_rank import LexRankSummarizer
from sumy.summarizers.text_rank import TextRankSummarizer
from sumy.utils import get_stop_words

from tasks.spr import compress, quality
from tasks.spr.text import sentences as split_sentences
from tasks.spr.text import word_count

MODULES = (
    "argparse", "asyncio", "collections", "csv", "ctypes", "decimal", "difflib", "doctest",
    "email", "ftplib", "heapq", "imaplib", "inspect", "json", "logging", "mailbox", "optparse",
    "pickle", "pickletools", "poplib", "pydoc", "re", "shlex", "smtplib", "string", "subprocess",
    "tarfile", "textwrap", "threading", "timeit", "typing", "unittest", "uuid", "zipfile",
)  # fmt: skip
MIN_WORDS = 150


def corpus(limit: int | None = None) -> list[tuple[str, str]]:
    """(name, text) of every offline document with ≥ MIN_WORDS words."""
    import pydoc_data.topics

    docs = [(f"pydoc:{k}", v) for k, v in sorted(pydoc_data.topics.topics.items())]
    for name in MODULES:
        try:
            doc = importlib.import_module(name).__doc__ or ""
        except ImportError:
            continue
        docs.append((f"module:{name}", doc))
    docs = [(n, t) for n, t in docs if word_count(t) >= MIN_WORDS]
    return docs[:limit] if limit else docs


class RegexTokenizer:
    """The interface sumy expects from its Tokenizer, without NLTK data."""

    language = "english"

    def to_sentences(self, paragraph: str) -> tuple[str, ...]:
        return tuple(s.text for s in split_sentences(paragraph))

    def to_words(self, sentence: str) -> tuple[str, ...]:
        return tuple(re.findall(r"\w+", sentence))


def _fit(ranked: list[int], sents: list[str], budget: int) -> str:
    """Sentences in rank order until `budget` words, the last cut to fit; document order."""
    picked: dict[int, list[str]] = {}
    used = 0
    for i in ranked:
        if used >= budget:
            break
        words = sents[i].split()[: budget - used]
        picked[i] = words
        used += len(words)
    return "\n".join(" ".join(picked[i]) for i in sorted(picked))


def lead(text: str, ratio: float) -> str:
    sents = [s.text for s in split_sentences(text)]
    return _fit(list(range(len(sents))), sents, round(ratio * word_count(text)))


def seeded_random(text: str, ratio: float) -> str:
    sents = [s.text for s in split_sentences(text)]
    order = list(range(len(sents)))
    random.Random(20261124).shuffle(order)
    return _fit(order, sents, round(ratio * word_count(text)))


def _sumy(summarizer_cls) -> Callable[[str, float], str]:
    tokenizer = RegexTokenizer()

    def run(text: str, ratio: float) -> str:
        document = PlaintextParser.from_string(text, tokenizer).document
        summarizer = summarizer_cls(Stemmer("english"))
        summarizer.stop_words = get_stop_words("english")
        captured: dict = {}

        def capture(sentences, count, rating, *args, **kwargs):
            captured["rating"] = rating
            return ()

        summarizer._get_best_sentences = capture  # ranking, not just the top-N in text order
        summarizer(document, len(document.sentences))
        sents = [str(s) for s in document.sentences]
        rating = captured.get("rating", {})
        scores = [rating.get(s, 0.0) for s in document.sentences]
        ranked = sorted(range(len(sents)), key=lambda i: -scores[i])
        return _fit(ranked, sents, round(ratio * word_count(text)))

    return run


def ours(text: str, ratio: float) -> str:
    fmt = "extended" if ratio >= 0.2 else "standard" if ratio >= 0.1 else "minimal"
    return compress(text, fmt, ratio).spr_text


SYSTEMS: dict[str, Callable[[str, float], str]] = {
    "spr (ours)": ours,
    "lead-N": lead,
    "random(seed)": seeded_random,
    "LexRank": _sumy(LexRankSummarizer),
    "TextRank": _sumy(TextRankSummarizer),
}
COMPONENTS = ("quality", "keyphrase_recall", "specials_recall", "semantic_coverage", "rouge1")


def evaluate(docs: list[tuple[str, str]], ratio: float, repeat: int) -> dict[str, dict[str, float]]:
    """Quality of each system's outputs; speed = best of `repeat` passes over the corpus, the
    systems' passes interleaved, so load from other processes hits every system alike."""
    outputs: dict[str, list[str]] = {}
    best: dict[str, float] = dict.fromkeys(SYSTEMS, float("inf"))
    for _ in range(repeat):
        for name, system in SYSTEMS.items():
            started = time.perf_counter()
            outputs[name] = [system(text, ratio) for _, text in docs]
            best[name] = min(best[name], time.perf_counter() - started)
    table: dict[str, dict[str, float]] = {}
    for name in SYSTEMS:
        elapsed = best[name]
        outputs_ = outputs[name]
        reports = [quality(t, o) for (_, t), o in zip(docs, outputs_, strict=True)]
        achieved = [word_count(o) / word_count(t) for (_, t), o in zip(docs, outputs_, strict=True)]
        table[name] = {
            "quality": statistics.median(r.quality for r in reports),
            "keyphrase_recall": statistics.median(r.keyphrase_recall for r in reports),
            "specials_recall": statistics.median(r.specials_recall for r in reports),
            "semantic_coverage": statistics.median(r.semantic_coverage for r in reports),
            "rouge1": statistics.median(r.rouge1_recall for r in reports),
            "mean_quality": statistics.fmean(r.quality for r in reports),
            "ratio": statistics.median(achieved),
            "max_ratio_error": max(abs(a - ratio) for a in achieved),
            "docs_per_s": len(docs) / elapsed,
        }
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ratios", type=float, nargs="+", default=[0.3, 0.15])
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=3, help="timing passes (best is kept)")
    args = parser.parse_args(argv)
    docs = corpus(args.limit)
    words = sorted(word_count(t) for _, t in docs)
    print(
        f"corpus: {len(docs)} documents (pydoc_data.topics + stdlib docstrings), "
        f"words median {statistics.median(words):.0f}, min {words[0]}, max {words[-1]}"
    )
    for ratio in args.ratios:
        table = evaluate(docs, ratio, args.repeat)
        print(f"\n== target word ratio {ratio} (medians over documents; max|err| = worst document)")
        head = (
            f"{'system':<14}{'composite':>10}{'keyphr':>8}{'num/id':>8}{'tfidf':>8}"
            f"{'rouge1':>8}{'ratio':>8}{'max|err|':>9}{'docs/s':>9}"
        )
        print(head)
        for name, row in table.items():
            print(
                f"{name:<14}{row['quality']:>10.3f}{row['keyphrase_recall']:>8.3f}"
                f"{row['specials_recall']:>8.3f}{row['semantic_coverage']:>8.3f}"
                f"{row['rouge1']:>8.3f}{row['ratio']:>8.3f}{row['max_ratio_error']:>9.3f}"
                f"{row['docs_per_s']:>9.1f}"
            )
        us = table["spr (ours)"]
        for name, row in table.items():
            if name == "spr (ours)":
                continue
            print(
                f"ours/{name}: composite x{us['quality'] / row['quality']:.2f}, "
                f"num/id x{us['specials_recall'] / max(row['specials_recall'], 1e-9):.2f}, "
                f"docs/s x{us['docs_per_s'] / row['docs_per_s']:.1f}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
