"""What an SPR run logs (counts, ids and measurements; never document text) and the metrics it
records: the content types found and each rejected document, each (format, batch) outcome with
its fallbacks and optimisation steps, the ratio and quality of every (document, format). No
Prefect: the flow writes the lines to its logger."""

from __future__ import annotations

import itertools
import logging
from collections import Counter
from collections.abc import Sequence

from tasks import metrics
from tasks.spr.models import AnalyzedDocument, DocumentResult, FormatResult
from tasks.spr.summary import median_text

MAX_IDS_LOGGED = 10

LogLine = tuple[int, str]


def _ids(ids: Sequence[str]) -> str:
    shown = ", ".join(ids[:MAX_IDS_LOGGED])
    return shown + (f" (+{len(ids) - MAX_IDS_LOGGED} more)" if len(ids) > MAX_IDS_LOGGED else "")


def analysis_story(analyzed: Sequence[AnalyzedDocument]) -> list[LogLine]:
    """The content types found, and each rejected document with its reason."""
    ok = [d.analysis for d in analyzed if d.analysis is not None]
    types_seen = Counter(a.content_type for a in ok)
    found = ", ".join(f"{t} {n}" for t, n in sorted(types_seen.items())) or "none"
    lines = [
        (
            logging.INFO,
            f"analyzed {len(analyzed)} documents: {len(ok)} to compress ({found}), "
            f"{len(analyzed) - len(ok)} rejected",
        )
    ]
    lines += [(logging.WARNING, f"rejected {d.id!r}: {d.error}") for d in analyzed if d.error]
    return lines


def chunk_story(
    fmt: str, label: str, outcome: dict[str, FormatResult | str], cached: bool, threshold: float
) -> list[LogLine]:
    """A (format, document batch) outcome: achieved ratio and quality, every fallback with its
    reason, every optimisation step, and the documents the format could not hold."""
    done = {i: r for i, r in outcome.items() if isinstance(r, FormatResult)}
    where = f"{fmt} {label}"
    lines: list[LogLine] = []
    if done:
        frs = list(done.values())
        lines.append(
            (
                logging.INFO,
                f"{where}: {len(frs)} documents{' (from cache)' if cached else ''}, median ratio "
                f"{median_text([f.achieved_ratio for f in frs])} (target "
                f"{median_text([f.target_ratio for f in frs])}), median quality "
                f"{median_text([f.quality.quality for f in frs])}, "
                f"{sum(f.passed for f in frs)}/{len(frs)} passed (threshold {threshold}), "
                f"re-compressions: {sum(len(f.optimization_steps) - 1 for f in frs)}",
            )
        )
    by_reason: dict[str, list[str]] = {}
    for doc_id, fr in done.items():
        for reason in fr.fallback_reasons:
            by_reason.setdefault(reason, []).append(doc_id)
    for reason, ids in sorted(by_reason.items()):
        lines.append(
            (
                logging.WARNING,
                f"{where}: fallback to the extractive path for {len(ids)} documents "
                f"({_ids(ids)}) — {reason}",
            )
        )
    for doc_id, fr in done.items():
        lines += [(logging.INFO, f"{where} {doc_id!r}: {s}") for s in optimization_story(fr)]
    lines += [
        (logging.WARNING, f"{where} {doc_id!r}: not compressed — {error}")
        for doc_id, error in outcome.items()
        if isinstance(error, str)
    ]
    return lines


def optimization_story(fr: FormatResult) -> list[str]:
    """One line per re-compression step, and how the loop ended (none when it passed at once)."""
    steps = fr.optimization_steps
    if len(steps) < 2:
        return []
    lines = [
        f"quality {a.quality:.3f} below threshold at ratio {a.target_ratio:.2f}; "
        f"re-compressed at {b.target_ratio:.2f} → quality {b.quality:.3f}"
        for a, b in itertools.pairwise(steps)
    ]
    verdict = "passed" if fr.passed else "still below the threshold, the bounded loop stops"
    lines.append(f"after {len(steps)} attempts: {verdict}")
    return lines


def record_metrics(results: Sequence[DocumentResult]) -> None:
    """The achieved ratio and the quality of every (document, format), by format and type."""
    for doc in results:
        ctype = doc.analysis.content_type if doc.analysis else "unknown"
        for fr in doc.formats:
            attributes = {"format": fr.format, "content_type": ctype}
            metrics.spr_ratio.record(fr.achieved_ratio, attributes)
            metrics.spr_quality.record(fr.quality.quality, attributes)
