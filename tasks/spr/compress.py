"""The offline extractive SPR compressor: the product's core.

A document becomes candidate statements (clauses of its sentences, made terse and cut to the
format's words-per-statement band); a lazy-greedy budgeted maximum-coverage selection then picks
statements by marginal gain per word — new keyphrases, new numbers/identifiers/URLs and new
weighted content terms (TF-IDF over the document's sentences, `tasks.spr.tfidf`) — with a
bonus for the sentences that carry the top fifth of salience (the 80/20 rule). The budget is
`round(target_ratio · words)`, filled exactly when the band allows, so the achieved word ratio
lands within ±0.03.
Pure Python, no Prefect.
"""

from __future__ import annotations

import heapq
import math
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache

from tasks.errors import InvalidInput
from tasks.spr.models import FORMATS, Compression
from tasks.spr.text import (
    STOPWORDS,
    Sentence,
    content_terms,
    keyphrases,
    sentences,
    word_count,
    word_specials,
    word_terms,
    wordset,
)
from tasks.spr.tfidf import fit_sentence_tfidf

RATIO_TOLERANCE = 0.03
PROTECTED_SHARE = 0.2  # the top fifth of sentences by salience (80/20)
PROTECTED_BONUS = 1.25

_FILLER = wordset("the a an very really just basically actually simply quite rather somewhat")
_NEGATION = frozenset({"not", "no", "nor", "never", "without", "cannot", "can't", "don't"})
_CLAUSE = re.compile(
    r"(?<=[;:])\s+|\s+[—–]\s+|\s+--\s+"
    r"|,\s+(?=(?:which|but|while|although|because|whereas|so that|unless|whereby)\b)"
)
_PUNCT_ONLY = re.compile(r"^\W+$")


@dataclass(frozen=True)
class Weights:
    """How much each kind of coverage is worth; the content-type strategy tunes these."""

    keyphrase: float = 0.35
    specials: float = 0.25
    terms: float = 0.40
    position: float = 0.03


STRATEGY_WEIGHTS: dict[str, Weights] = {
    "default": Weights(),
    "identifier-first": Weights(keyphrase=0.30, specials=0.40, terms=0.30),
    "narrative-flow": Weights(keyphrase=0.35, specials=0.15, terms=0.50, position=0.05),
}


@dataclass
class _Unit:
    order: tuple[int, int]
    sentence: int
    tokens: list[str]
    terms: frozenset[str]
    specials: frozenset[str]
    phrases: frozenset[int]
    protected: bool = False
    position: float = 0.0
    selected: bool = False
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def cost(self) -> int:
        return len(self.tokens)


def _terse(tokens: list[str], level: str, verbatim: bool) -> list[str]:
    """Drop filler words: stopwords (minimal), articles and fillers (standard, extended).
    Negations always stay; code/data lines keep every token."""
    return [t for t in tokens if _keep(t, level, verbatim)]


@lru_cache(maxsize=100_000)
def _keep(token: str, level: str, verbatim: bool) -> bool:
    if _PUNCT_ONLY.match(token):
        return False
    if verbatim:
        return True
    bare = token.strip("\"'()[],.;:!?").lower()
    return bare in _NEGATION or not _droppable(bare, token, level)


def _droppable(bare: str, token: str, level: str) -> bool:
    if level == "minimal" and bare in STOPWORDS and not any(c.isdigit() for c in bare):
        return True
    return bare in _FILLER and token[:1].islower()


_CUT_PRIORITY = {".": 3, "!": 3, "?": 3, ";": 2, ":": 2, ",": 1}


def _pieces(tokens: list[str], low: int, high: int) -> list[list[str]]:
    """Cut `tokens` into pieces of `low`..`high` words, preferring cuts at a sentence end, then
    after a semicolon or colon, then after a comma; an even split when there is none."""
    if len(tokens) <= high:
        return [tokens]
    out: list[list[str]] = []
    start = 0
    while len(tokens) - start > high:
        rest = len(tokens) - start
        best, best_priority = 0, 0
        for cut in range(start + low, start + high + 1):
            if len(tokens) - cut < low:
                break
            priority = _CUT_PRIORITY.get(tokens[cut - 1].rstrip("\"')]")[-1:], 0)
            if priority >= best_priority and priority > 0:
                best, best_priority = cut, priority
        if not best:
            n = math.ceil(rest / high)
            best = start + math.ceil(rest / n)
        out.append(tokens[start:best])
        start = best
    out.append(tokens[start:])
    return out


def _statement_tokens(sents: list[Sentence], level: str, band: tuple[int, int], terse: bool):
    """(sentence index, tokens) statements in document order, each within the band when the
    text allows (short clauses are joined with their neighbours in the same paragraph)."""
    low, high = band
    pending: list[str] = []
    pending_sentence = -1
    pending_paragraph = -1
    pending_verbatim = False
    out: list[tuple[int, list[str]]] = []

    def flush_pending(final: bool = False) -> None:
        nonlocal pending
        if not pending:
            return
        if len(pending) >= low:
            out.append((pending_sentence, pending))
        elif out:  # too short to stand alone: join the previous statement, re-cut if too long
            prev_sentence, prev = out.pop()
            out.extend((prev_sentence, piece) for piece in _pieces(prev + pending, low, high))
        elif not final:
            return  # nothing before it (a title): it joins the next statement instead
        else:
            out.append((pending_sentence, pending))
        pending = []

    for sent in sents:
        clauses = [sent.text] if sent.verbatim else _CLAUSE.split(sent.text)
        for clause in clauses:
            raw = clause.split()
            tokens = _terse(raw, level, sent.verbatim) if terse else raw
            if not tokens:
                continue
            if sent.paragraph != pending_paragraph or sent.verbatim != pending_verbatim:
                flush_pending()
                pending_paragraph, pending_verbatim = sent.paragraph, sent.verbatim
            if pending:
                tokens = pending + tokens
                sentence_index = pending_sentence
                pending = []
            else:
                sentence_index = sent.index
            if len(tokens) < low:
                pending, pending_sentence = tokens, sentence_index
                continue
            for piece in _pieces(tokens, low, high):
                out.append((sentence_index, piece))
    flush_pending(final=True)
    return out


def _term_weights(sents: list[Sentence]) -> tuple[dict[str, float], list[Counter[str]]]:
    """TF-IDF weight of each content term (the document's term counts times the IDF of
    `tasks.spr.tfidf` over its sentences), summing to 1."""
    terms = [content_terms(s.text) for s in sents]
    per_sentence = [Counter(t) for t in terms]
    tf: Counter[str] = Counter()
    for counts in per_sentence:
        tf.update(counts)
    model = fit_sentence_tfidf(terms)
    idf = model.idf() if model is not None else {}
    raw = {t: tf[t] * idf[t] for t in tf}
    total = sum(raw.values()) or 1.0
    return {t: w / total for t, w in raw.items()}, per_sentence


def compress(
    text: str,
    format: str = "standard",
    target_ratio: float | None = None,
    *,
    strategy: str = "default",
    protect: bool = True,
) -> Compression:
    """Compress `text` into `format` statements whose word count is `target_ratio` (default:
    the format's) of the original, within ±0.03.

    Raises `InvalidInput` for an unknown format, a ratio outside (0, 1], or a text too short
    to hold one statement of the format at that ratio."""
    started = time.perf_counter()
    if format not in FORMATS:
        raise InvalidInput(f"unknown SPR format {format!r}; expected one of {sorted(FORMATS)}")
    spec = FORMATS[format]
    ratio = spec.default_ratio if target_ratio is None else float(target_ratio)
    if not 0 < ratio <= 1:
        raise InvalidInput(f"target_ratio {ratio} must be in (0, 1]")
    total_words = word_count(text)
    if total_words == 0:
        raise InvalidInput("document is empty (no words)")
    budget = round(ratio * total_words)
    low, high = spec.words_per_statement
    if budget < low:
        need = math.ceil(low / ratio)
        raise InvalidInput(
            f"document has {total_words} words: too short for {format} at ratio {ratio:g} "
            f"(one {low}-word statement needs ≥ {need} words)"
        )
    weights = STRATEGY_WEIGHTS.get(strategy, STRATEGY_WEIGHTS["default"])
    sents = sentences(text)
    units, protected_total = _units(text, sents, format, (low, high), terse=True)
    tolerance = math.floor(RATIO_TOLERANCE * total_words)
    if sum(u.cost for u in units) < budget:  # very high ratio: keep the words we would drop
        units, protected_total = _units(text, sents, format, (low, high), terse=False)
    if sum(u.cost for u in units) < budget - tolerance:  # ratio near 1: every line, verbatim
        lines = [ln for ln in text.splitlines() if ln.split()]
        sents = [Sentence(i, ln, i, True) for i, ln in enumerate(lines)]
        units, protected_total = _units(text, sents, format, (low, high), terse=False)
    if not protect:
        for unit in units:
            unit.protected = False
    chosen = _select(units, budget, weights, _totals(units))
    chosen = _fill(units, chosen, budget, (low, high), tolerance)
    chosen.sort(key=lambda u: u.order)
    return Compression.measured(
        format,
        ratio,
        total_words,
        [_tidy(u.tokens) for u in chosen],
        started,
        protected_sentences=len({u.sentence for u in chosen if u.protected}),
        protected_total=protected_total,
    )


def _units(text: str, sents: list[Sentence], level: str, band: tuple[int, int], terse: bool):
    term_weight, per_sentence = _term_weights(sents)
    phrases = keyphrases(text)
    # sentence salience: weighted distinct terms per sqrt(length), plus a lead bonus
    salience = []
    for sent, counts in zip(sents, per_sentence, strict=True):
        mass = sum(term_weight.get(t, 0.0) for t in counts)
        salience.append(mass / math.sqrt(max(1, len(sent.text.split()))))
    top = max(1, round(PROTECTED_SHARE * len(sents))) if sents else 0
    protected = set(sorted(range(len(sents)), key=lambda i: -salience[i])[:top])
    by_first: dict[str, list[int]] = {}
    for i, phrase in enumerate(phrases):
        by_first.setdefault(phrase[0], []).append(i)
    units: list[_Unit] = []
    for n, (sentence_index, tokens) in enumerate(_statement_tokens(sents, level, band, terse)):
        terms = frozenset(t for token in tokens for t in word_terms(token))
        covered = frozenset(
            i for t in terms for i in by_first.get(t, ()) if all(x in terms for x in phrases[i])
        )
        units.append(
            _Unit(
                order=(sentence_index, n),
                sentence=sentence_index,
                tokens=tokens,
                terms=terms,
                specials=frozenset(s for token in tokens for s in word_specials(token)),
                phrases=covered,
                protected=sentence_index in protected,
                position=1.0 / (1 + sentence_index),
                extra={t: term_weight.get(t, 0.0) for t in terms},
            )
        )
    return units, len(protected)


def _totals(units: list[_Unit]) -> tuple[int, int]:
    phrases = set().union(*(u.phrases for u in units)) if units else set()
    specials = set().union(*(u.specials for u in units)) if units else set()
    return max(1, len(phrases)), max(1, len(specials))


def _gain(unit: _Unit, covered: dict[str, set], weights: Weights, totals: tuple[int, int]):
    n_phrases, n_specials = totals
    value = (
        weights.keyphrase * len(unit.phrases - covered["phrases"]) / n_phrases
        + weights.specials * len(unit.specials - covered["specials"]) / n_specials
        + weights.terms * sum(w for t, w in unit.extra.items() if t not in covered["terms"])
        + weights.position * unit.position * 0.1
    )
    if unit.protected:
        value *= PROTECTED_BONUS
    return value


def _select(units: list[_Unit], budget: int, weights: Weights, totals: tuple[int, int]):
    """Lazy greedy budgeted max coverage (gains only shrink as coverage grows)."""
    covered: dict[str, set] = {"phrases": set(), "specials": set(), "terms": set()}
    heap = [(-_gain(u, covered, weights, totals) / u.cost, i) for i, u in enumerate(units)]
    heapq.heapify(heap)
    used = 0
    chosen: list[_Unit] = []
    while heap and used < budget:
        _, i = heapq.heappop(heap)
        unit = units[i]
        if unit.cost > budget - used:
            continue
        score = _gain(unit, covered, weights, totals) / unit.cost
        if heap and score < -heap[0][0] - 1e-12:
            heapq.heappush(heap, (-score, i))
            continue
        unit.selected = True
        chosen.append(unit)
        used += unit.cost
        covered["phrases"] |= unit.phrases
        covered["specials"] |= unit.specials
        covered["terms"] |= unit.terms
    return chosen


def _fill(
    units: list[_Unit], chosen: list[_Unit], budget: int, band: tuple[int, int], tolerance: int
) -> list[_Unit]:
    """Use the words left in the budget: the best unchosen statement, trimmed to fit; when
    fewer words are left than a statement's minimum, trim others' least useful words."""
    low, _ = band
    left = budget - sum(u.cost for u in chosen)
    if left <= 0 or (left < low and left <= tolerance // 2):
        return chosen
    rest = [u for u in units if not u.selected and u.cost >= low]
    if not rest:
        return chosen
    best = max(rest, key=lambda u: (len(u.specials) + len(u.phrases), sum(u.extra.values())))
    take = max(low, min(left, best.cost))
    best.tokens = best.tokens[:take]
    best.selected = True
    chosen = [*chosen, best]
    over = sum(u.cost for u in chosen) - budget
    for unit in sorted(chosen, key=lambda u: -u.cost):
        while over > 0 and unit.cost > low:
            drop = _least_useful(unit.tokens)
            del unit.tokens[drop]
            over -= 1
    return chosen


def _least_useful(tokens: list[str]) -> int:
    """Index of a stopword if any (last first; never a negation), else the last token."""
    for i in range(len(tokens) - 1, -1, -1):
        bare = tokens[i].strip("\"'(),.;:").lower()
        if bare in STOPWORDS and bare not in _NEGATION:
            return i
    return len(tokens) - 1


def _tidy(tokens: list[str]) -> str:
    text = " ".join(tokens)
    return text.rstrip(",;:—– ") or text
