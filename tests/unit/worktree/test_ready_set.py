"""The ready set the deployment schedules by: a node starts once its own dependencies
succeeded; a failure skips its dependents at once, transitively, with the reason."""

from __future__ import annotations

import pytest

from tasks.errors import DependencyCycle
from tasks.graph import ReadySet

DIAMOND = {"db": [], "api": ["db"], "web": ["db"], "gateway": ["api", "web"]}


def test_a_node_is_ready_once_each_of_its_own_dependencies_succeeded():
    ready = ReadySet(DIAMOND)
    assert ready.take() == ["db"]
    assert ready.take() == []  # handed out once
    ready.succeeded("db")
    assert ready.take() == ["api", "web"]
    ready.succeeded("web")
    assert ready.take() == []  # gateway still waits for api
    ready.succeeded("api")
    assert ready.take() == ["gateway"] and ready.pending() == []


def test_take_hands_out_at_most_limit_and_keeps_the_rest_for_later():
    ready = ReadySet({"a": [], "b": [], "c": []})
    assert ready.take(1) == ["a"]
    assert ready.take(0) == []
    assert ready.take(1) == ["b"] and ready.take() == ["c"]


def test_dependents_of_a_failure_are_skipped_transitively_at_once():
    ready = ReadySet({"a": [], "b": ["a"], "c": ["b"], "d": [], "e": ["d", "a"]})
    assert ready.take() == ["a", "d"]
    skipped = ready.failed("a", "unhealthy")  # d is still running: e is skipped anyway
    assert skipped == {
        "b": "dependency a unhealthy",
        "c": "dependency b was skipped",
        "e": "dependency a unhealthy",
    }
    ready.succeeded("d")
    assert ready.take() == [] and ready.pending() == []


def test_a_cycle_is_named():
    with pytest.raises(DependencyCycle, match=r"a -> b -> a|b -> a -> b"):
        ReadySet({"a": ["b"], "b": ["a"]})
