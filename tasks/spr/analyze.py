"""Content analysis: word count, content type (one of `models.CONTENT_TYPES`), complexity,
language and the compression strategy for the type. Features are word-boundary regexes and
line shapes, never substrings ("class" inside "classification" is not code).
Pure Python, no Prefect."""

from __future__ import annotations

import re
from collections.abc import Callable

from tasks.spr.models import ContentAnalysis
from tasks.spr.text import raw_terms, sentences, word_count, wordset

_LINES_CODE = re.compile(
    r"^\s*(?:def|class|import|from\s+\S+\s+import|return|if|elif|else|for|while|try|except|"
    r"function|const|let|var|public|private|static|void|int|package|func|fn|#include|using|"
    r"SELECT|INSERT|UPDATE|CREATE)\b|[;{}]\s*$|=>|^\s*[@#]\w+|\w+\([^)]*\)\s*[:{]?\s*$"
)
_LOG_LINE = re.compile(
    r"^\s*\[?\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}|^\s*\[?\d{2}:\d{2}:\d{2}"
    r"|\b(?:INFO|WARN|WARNING|ERROR|DEBUG|TRACE|FATAL|CRITICAL)\b|^\w{3}\s+\d{1,2}\s\d{2}:\d{2}"
)
_TABLE_LINE = re.compile(r"^(?:[^,\n]*,){3,}[^,\n]*$|^\s*\|.*\|\s*$|^(?:[^\t\n]*\t){2,}")
_SPEAKER = re.compile(r"^\s*(?:\[[^\]]{1,20}\]\s*)?(?:<[^>]{1,30}>|[A-Za-z][\w .'-]{0,24}:)\s+\S")
_HEADING = re.compile(r"^\s*(?:#{1,6}\s+\S|[=\-*]{3,}\s*$|\.\.\s+\w+::)")

_VOCAB: dict[str, frozenset[str]] = {
    "technical": wordset(
        """server servers api apis latency database databases cluster clusters kubernetes
        deploy deployment deployments cache caching protocol throughput cpu memory config
        configuration network request requests endpoint endpoints service services node
        nodes container containers docker load balancer tcp http https dns query queries
        replica replicas shard shards timeout timeouts thread threads kernel queue queues
        microservice microservices bandwidth storage disk runtime pipeline infrastructure
        scaling scalability failover backend frontend cpu gpu bytes packet packets"""
    ),
    "documentation": wordset(
        """usage install installation installing parameters parameter returns return
        example examples note notes see option options argument arguments default defaults
        guide tutorial reference command commands optional required configure section
        overview getting started run running readme documentation docs
        module function method attribute class raises deprecated version added"""
    ),
    "scientific": wordset(
        """hypothesis experiment experiments experimental results significant significance
        sample samples participants measured measurement measurements coefficient
        methodology abstract conclusion conclusions analysis observed data variance
        statistically correlation study studies control trial trials cells protein
        species temperature concentration et al findings evidence p model models
        regression mean deviation effect effects laboratory specimens"""
    ),
    "business": wordset(
        """revenue revenues quarter quarterly customers customer market markets stakeholders
        budget roi strategy sales growth kpi kpis profit profits margin margins ebitda
        investors investment shareholders fiscal forecast pricing contract contracts
        clients client partnership acquisition board executive ceo cfo q1 q2 q3 q4 yoy
        headcount hiring marketing brand product launch team goals okrs costs cost"""
    ),
    "narrative": wordset(
        """he she her his him they them their was were had said asked looked felt thought
        walked smiled turned morning night day old little house door window eyes hand
        hands face heart remembered knew once upon mother father village road"""
    ),
    "conversation": wordset(
        """hi hey hello thanks thank lol yeah yes ok okay sure you i me we're i'm you're
        don't can't please sorry btw gonna wanna pls np ty great cool sounds good
        bye"""
    ),
}

# the compressor weighting (`compress.STRATEGY_WEIGHTS`) each content type gets
STRATEGY_FOR_TYPE = {
    "code": "identifier-first",
    "data/log": "identifier-first",
    "technical": "identifier-first",
    "documentation": "default",
    "scientific": "default",
    "business": "default",
    "narrative": "narrative-flow",
    "conversation": "narrative-flow",
}

_LANG_STOPWORDS = {
    "en": {"the", "and", "of", "to", "is", "in", "that", "it", "with", "for"},
    "es": {"el", "la", "de", "que", "y", "en", "los", "las", "por", "con", "una"},
    "fr": {"le", "la", "les", "de", "et", "est", "des", "une", "dans", "pour", "que"},
    "de": {"der", "die", "das", "und", "ist", "nicht", "mit", "ein", "eine", "zu", "den"},
}


def _share(lines: list[str], test: Callable[[str], bool]) -> float:
    return sum(1 for line in lines if test(line)) / len(lines) if lines else 0.0


def type_scores(text: str) -> dict[str, float]:
    """A score per content type (higher is more likely); features are line shapes and
    word-boundary vocabulary rates."""
    lines = [line for line in text.splitlines() if line.strip()]
    terms = raw_terms(text)
    n = max(1, len(terms))
    rate = {k: sum(1 for t in terms if t in vocab) / n for k, vocab in _VOCAB.items()}
    symbols = sum(text.count(c) for c in "{}()[];=<>") / max(1, len(text))
    digits = sum(c.isdigit() for c in text) / max(1, len(text))
    code_lines = _share(lines, lambda s: bool(_LINES_CODE.search(s)))
    log_lines = _share(lines, lambda s: bool(_LOG_LINE.search(s)))
    table_lines = _share(lines, lambda s: bool(_TABLE_LINE.search(s)))
    speaker_lines = _share(lines, lambda s: bool(_SPEAKER.match(s)))
    heading_lines = _share(lines, lambda s: bool(_HEADING.match(s)))
    questions = text.count("?") / max(1, len(lines))
    quotes = len(re.findall(r"[\"“][^\"”]{2,}[\"”]", text)) / max(1, len(lines))
    return {
        "code": 2.5 * code_lines + 6 * symbols,
        "data/log": 2.0 * max(log_lines, table_lines) + 3 * digits,
        "conversation": 1.8 * speaker_lines + 2.5 * rate["conversation"] + 0.2 * questions,
        "documentation": 1.2 * heading_lines + 5 * rate["documentation"],
        "technical": 6 * rate["technical"],
        "scientific": 6 * rate["scientific"] + 2 * digits,
        "business": 6 * rate["business"],
        "narrative": 4 * rate["narrative"] + 0.3 * quotes,
    }


def _best_type(scores: dict[str, float]) -> str:
    """The highest-scoring type; on a tie, documentation."""
    return max(scores, key=lambda k: (scores[k], k == "documentation"))


def classify(text: str) -> str:
    return _best_type(type_scores(text))


def complexity(text: str) -> float:
    """0..1 from mean sentence length, mean word length and vocabulary richness."""
    sents = sentences(text)
    terms = raw_terms(text)
    if not sents or not terms:
        return 0.0
    mean_sentence = word_count(text) / len(sents)
    mean_word = sum(len(t) for t in terms) / len(terms)
    richness = len(set(terms)) / len(terms) ** 0.5 / 10  # Guiraud's index, scaled
    score = 0.4 * min(1.0, mean_sentence / 35) + 0.35 * min(1.0, mean_word / 8) + 0.25 * richness
    return round(min(1.0, score), 3)


def language(text: str) -> str:
    """ISO code of the most likely language among en/es/fr/de, or 'unknown'."""
    terms = raw_terms(text[:20_000])
    if not terms:
        return "unknown"
    hits = {lang: sum(1 for t in terms if t in stop) for lang, stop in _LANG_STOPWORDS.items()}
    best = max(hits, key=hits.__getitem__)
    return best if hits[best] / len(terms) >= 0.02 else "unknown"


def analyze(text: str) -> ContentAnalysis:
    """Everything the pipeline needs to know about a document before compressing it."""
    scores = type_scores(text)
    content_type = _best_type(scores)
    level = complexity(text)
    return ContentAnalysis(
        word_count=word_count(text),
        content_type=content_type,  # type: ignore[arg-type]
        type_scores={k: round(v, 4) for k, v in scores.items()},
        complexity=level,
        complexity_label="low" if level < 0.4 else "medium" if level < 0.65 else "high",
        language=language(text),
        strategy=STRATEGY_FOR_TYPE[content_type],
    )
