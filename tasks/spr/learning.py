"""Per-content-type ratio adjustments learned between runs: how much more ratio documents of a
type needed in a format to pass the quality threshold, folded into an exponential moving
average and persisted in `spr_learned_ratios.json` (the coordination dir, under the store's
lock). One shape everywhere: `RatioAdjustments` (content type -> format -> extra ratio).
Pure Python, no Prefect."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from tasks.settings import Settings, get_settings
from tasks.spr.models import AnalyzedDocument, DocumentResult, RatioAdjustments
from tasks.store import JsonStore

LEARNED_FILE = "spr_learned_ratios.json"
LEARNING_RATE = 0.3
MAX_ADJUSTMENT = 0.3


def learn_adjustments(
    previous: RatioAdjustments,
    results: list[DocumentResult],
    step: float,
    threshold: float,
) -> RatioAdjustments:
    """New adjustments: an exponential moving average of the extra ratio documents needed to
    pass. A document that passed at once with a margin of 0.05 reports one step less than the
    current adjustment, so an unneeded adjustment decays."""
    needed: dict[tuple[str, str], list[float]] = defaultdict(list)
    for doc in results:
        if doc.analysis is None:
            continue
        ctype = doc.analysis.content_type
        for fr in doc.formats:
            current = previous.get(ctype, {}).get(fr.format, 0.0)
            extra = fr.target_ratio - fr.requested_ratio
            if not fr.passed:
                extra += step  # it needed more than the bounded loop tried
            elif len(fr.optimization_steps) == 1 and fr.quality.quality >= threshold + 0.05:
                extra = max(0.0, current - step)
            needed[(ctype, fr.format)].append(extra)
    learned = {k: dict(v) for k, v in previous.items()}
    for (ctype, fmt), extras in needed.items():
        current = learned.get(ctype, {}).get(fmt, 0.0)
        observed = sum(extras) / len(extras)
        value = (1 - LEARNING_RATE) * current + LEARNING_RATE * observed
        # steps of 0.01: an adjustment settles (so repeat runs hit the cache) instead of
        # creeping by fractions of a word forever
        learned.setdefault(ctype, {})[fmt] = round(min(MAX_ADJUSTMENT, max(0.0, value)), 2)
    return learned


def relevant_adjustments(
    docs: Iterable[AnalyzedDocument], fmt: str, learned: RatioAdjustments
) -> RatioAdjustments:
    """The part of `learned` that matters to `docs` in `fmt` (their content types, that
    format), so a chunk's cache key changes only when its own adjustments do."""
    types = sorted({d.analysis.content_type for d in docs if d.analysis is not None})
    return {t: {fmt: learned[t][fmt]} for t in types if fmt in learned.get(t, {})}


def learned_store(settings: Settings | None = None) -> JsonStore[dict[str, Any]]:
    settings = settings or get_settings()
    return JsonStore(
        settings.coordination_dir / LEARNED_FILE,
        dict,
        lock_timeout_s=settings.lock_timeout_s,
        lock_tries=settings.lock_tries,
    )


def load_learned(settings: Settings | None = None) -> RatioAdjustments:
    return learned_store(settings).read().get("adjustments", {})


def record_run(
    results: list[DocumentResult],
    step: float,
    threshold: float,
    run_id: str,
    settings: Settings | None = None,
) -> RatioAdjustments:
    """Fold this run's results into the persisted adjustments (under the store's lock), once
    per run: the same run again (a resumed run) changes nothing."""

    def mutate(state: dict[str, Any]) -> None:
        if state.get("last_run_id") == run_id:
            return  # a retry of a run killed after this update: already folded in
        state["adjustments"] = learn_adjustments(
            state.get("adjustments", {}), results, step, threshold
        )
        state["runs"] = int(state.get("runs", 0)) + 1
        state["last_run_id"] = run_id
        state["updated_at"] = datetime.now(UTC).isoformat()

    return learned_store(settings).update(mutate)["adjustments"]
