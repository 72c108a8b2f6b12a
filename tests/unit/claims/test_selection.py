"""What `take` selects (pure): priority order, closed under dependencies, within the limit."""

from __future__ import annotations

from tasks.claims.selection import Candidate, closed_selection


def _pool(*cands: Candidate) -> dict[str, Candidate]:
    return {c.work_item_id: c for c in cands}


def test_a_dependent_is_selected_with_what_it_waits_on_dependencies_first():
    pool = _pool(
        Candidate("report", (0, 9), ("load", "clean")),
        Candidate("clean", (3, 2), ("load",)),
        Candidate("load", (3, 1)),
        Candidate("extra", (1, 5)),
    )
    assert closed_selection(pool, 10) == ["load", "clean", "report", "extra"]


def test_a_closure_that_does_not_fit_the_limit_is_skipped_not_split():
    pool = _pool(
        Candidate("big", (0, 1), ("a", "b")),
        Candidate("a", (2, 2)),
        Candidate("b", (2, 3)),
        Candidate("small", (1, 4)),
    )
    assert closed_selection(pool, 2) == ["small", "a"]


def test_an_item_waiting_on_something_outside_the_pool_is_not_selected():
    pool = _pool(Candidate("orphan", (0, 1), ("held-elsewhere",)), Candidate("free", (1, 2)))
    assert closed_selection(pool, 5) == ["free"]
