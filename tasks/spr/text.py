"""Text primitives every SPR step shares: words, sentences, content terms, keyphrases, and
numbers/identifiers/URLs. One definition of each, so the compressor covers exactly what the
quality metric measures. Pure Python, no Prefect."""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from functools import cache, lru_cache


def wordset(text: str) -> frozenset[str]:
    """The whitespace-separated words of `text` as a set (for word lists in source)."""
    return frozenset(text.split())


# Ratios are measured in words: whitespace-separated tokens.
_WS = re.compile(r"\S+")

STOPWORDS = wordset(
    """a about above after again against all am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers herself him himself his how i if in into is it
    its itself just me more most my myself no nor not of off on once only or other our ours
    ourselves out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we were
    what when where which while who whom why will with would you your yours yourself
    yourselves also may might must shall upon via per within without whether however therefore
    thus hence etc e.g i.e one two used using use"""
)

_TERM = re.compile(r"[A-Za-z0-9_]+(?:['’.][A-Za-z0-9_]+)*")
_SENT_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9*#-])")
_ABBREV = re.compile(r"\b(?:e\.g|i\.e|etc|vs|cf|Mr|Mrs|Dr|Fig|No|approx)\.$", re.I)

URL = re.compile(r"\b(?:https?|ftp)://[^\s<>\"')\]]+|\bwww\.[^\s<>\"')\]]+", re.I)
NUMBER = re.compile(r"(?<![\w.])[-+]?\$?\d+(?:[.,:/-]\d+)*%?(?![\w])")
IDENT = re.compile(
    r"(?<![\w.])(?:"
    r"[A-Za-z]+\d+(?:\.\d+)+"  # v2.14.0
    r"|--?[A-Za-z][\w-]+"  # --flag, -O
    r"|[A-Za-z_][\w]*(?:\.[A-Za-z_][\w]*)+(?:\(\))?"  # os.path.join, x.y()
    r"|_*[A-Za-z][A-Za-z0-9]*_[\w]*"  # snake_case, __init__
    r"|[a-z]+[A-Z][A-Za-z0-9]*"  # camelCase
    r"|[A-Z][a-z0-9]+[A-Z][A-Za-z0-9]*"  # PascalCase with an inner capital
    r"|[A-Z]{2,}[0-9]*s?"  # HTTP, API, UTF8
    r"|[A-Za-z]+[0-9]+[A-Za-z0-9]*"  # utf8, sha256, v2
    r"|[A-Za-z_]\w*\(\)"  # call()
    r")(?![\w])"
)
# phrase boundaries: punctuation, but not the dot inside os.path or v2.14.0
_PHRASE_TOKEN = re.compile(r"[a-z0-9_]+(?:['.][a-z0-9_]+)*|[,;:!?()\[\]{}\"“”<>=|/\n]+|\.(?=\s|$)")
_TRAILING = ".,;:!?\"')]}*"


@cache
def _stemmer():
    """NLTK's Porter stemmer, made at the first stem: importing nltk loads scipy.stats and
    scikit-learn (seconds), which tokenising, `.spr` checks and the CLI's help never need."""
    from nltk.stem.porter import PorterStemmer

    return PorterStemmer()


@lru_cache(maxsize=200_000)
def stem(word: str) -> str:
    return _stemmer().stem(word, to_lowercase=False)


def words(text: str) -> list[str]:
    """The words of `text`: whitespace-separated tokens."""
    return text.split()


def word_count(text: str) -> int:
    return sum(1 for _ in _WS.finditer(text))


def raw_terms(text: str) -> list[str]:
    """Lowercased word tokens, stopwords included."""
    return _TERM.findall(text.lower().replace("’", "'"))


@lru_cache(maxsize=200_000)
def _content(token: str) -> str:
    """The stem of a content word, or '' for a stopword or a 1-letter token."""
    return "" if token in STOPWORDS or len(token) < 2 else stem(token)


def content_terms(text: str) -> list[str]:
    """Stemmed, lowercased content words (no stopwords, no 1-letter tokens)."""
    return [c for t in raw_terms(text) if (c := _content(t))]


def special_tokens(text: str) -> set[str]:
    """Numbers, identifiers and URLs, normalised (lowercase, trailing punctuation stripped).
    Found word by word (none spans a space), so a statement's are a subset of its source's."""
    found: set[str] = set()
    for word in text.split():
        found |= word_specials(word)
    return found


@lru_cache(maxsize=200_000)
def word_terms(word: str) -> tuple[str, ...]:
    """`content_terms` of one whitespace-free word (cached: words repeat)."""
    return tuple(content_terms(word))


@lru_cache(maxsize=200_000)
def word_specials(word: str) -> frozenset[str]:
    """`special_tokens` of one whitespace-free word (cached)."""
    if not any(c.isdigit() or c in "_./-()" or c.isupper() for c in word):
        return frozenset()
    found: set[str] = set()
    for match in URL.finditer(word):
        found.add(match.group().rstrip(_TRAILING).lower())
    stripped = URL.sub(" ", word)
    for pattern in (NUMBER, IDENT):
        for match in pattern.finditer(stripped):
            token = match.group().rstrip(_TRAILING).lower()
            if token.endswith("()"):
                token = token[:-2]
            if token and token not in STOPWORDS and any(c.isalnum() for c in token):
                found.add(token)
    return frozenset(found)


@dataclass(frozen=True)
class Sentence:
    """A unit of the source: a prose sentence, or one line of code/data."""

    index: int
    text: str
    paragraph: int
    verbatim: bool  # code or data line: keep every token


_CODE_LINE = re.compile(
    r"^\s{3,}\S|^\s*(?:[$>]\s|def |class |import |from \S+ import|return\b|[{}]\s*$)"
    r"|[;{}]\s*$|^\s*[\w.]+\s*(?:[-+*/]?=|::=)\s*\S"
)
_LIST_ITEM = re.compile(r"^\s*(?:[-*•+]|\d+[.)])\s+")
_RULE = re.compile(r"^[\s*=#~^_-]*$")


def sentences(text: str) -> list[Sentence]:
    """Split `text` into sentences (prose) and lines (code, logs, list items, tables)."""
    out: list[Sentence] = []
    paragraph = 0
    prose: list[str] = []

    def flush() -> None:
        if prose:
            joined = " ".join(s.strip() for s in prose)
            for part in _split_prose(joined):
                out.append(Sentence(len(out), part, paragraph, False))
            prose.clear()

    for line in text.splitlines():
        if not line.strip() or _RULE.match(line):
            flush()
            paragraph += 1
            continue
        if _CODE_LINE.search(line) or "\t" in line or line.count("|") >= 2:
            flush()
            out.append(Sentence(len(out), line.strip(), paragraph, True))
        elif _LIST_ITEM.match(line):
            flush()
            prose.append(_LIST_ITEM.sub("", line))
        else:
            prose.append(line)
    flush()
    return out


def _split_prose(text: str) -> list[str]:
    parts: list[str] = []
    start = 0
    for match in _SENT_END.finditer(text):
        candidate = text[start : match.start()].strip()
        if _ABBREV.search(candidate):
            continue
        if candidate:
            parts.append(candidate)
        start = match.end()
    tail = text[start:].strip()
    if tail:
        parts.append(tail)
    return parts


def keyphrases(text: str, limit: int | None = None) -> list[tuple[str, ...]]:
    """The document's keyphrases as tuples of stemmed terms, best first (RAKE-style candidates
    — runs of content words between stopwords and punctuation — scored by frequency, with
    longer phrases credited for their specificity). `limit` defaults to one per ~40 words,
    between 5 and 20."""
    if limit is None:
        limit = max(5, min(20, word_count(text) // 40))
    candidates: Counter[tuple[str, ...]] = Counter()
    term_freq: Counter[str] = Counter()
    run: list[str] = []
    for token in _PHRASE_TOKEN.findall(text.lower().replace("’", "'")):
        word = token[0].isalnum() or token[0] == "_"
        stemmed = _content(token) if word and not token.isdigit() else ""
        if stemmed:
            run.append(stemmed)
            continue
        if run:  # a stopword, a number or punctuation ends the candidate
            candidates[tuple(run[:3])] += 1
            term_freq.update(run)
            run = []
    if run:
        candidates[tuple(run[:3])] += 1
        term_freq.update(run)
    scored: list[tuple[float, tuple[str, ...]]] = []
    for phrase, count in candidates.items():
        specificity = 1.0 + 0.5 * (len(set(phrase)) - 1)
        mean_freq = sum(term_freq[t] for t in phrase) / len(phrase)
        scored.append((count * specificity * math.log1p(mean_freq), phrase))
    scored.sort(key=lambda sp: (-sp[0], sp[1]))
    chosen: list[tuple[str, ...]] = []
    for _, phrase in scored:
        # a phrase contained in a chosen one adds nothing (and vice versa)
        if any(_contains(c, phrase) or _contains(phrase, c) for c in chosen):
            continue
        chosen.append(phrase)
        if len(chosen) == limit:
            break
    return chosen


def _contains(big: tuple[str, ...], small: tuple[str, ...]) -> bool:
    n = len(small)
    return any(big[i : i + n] == small for i in range(len(big) - n + 1))
