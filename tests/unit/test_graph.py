from __future__ import annotations

import pytest

from tasks.errors import DependencyCycle, InvalidInput
from tasks.graph import batches, critical_path, dependents, validate_graph

DIAMOND = {"db": [], "api": ["db"], "worker": ["db"], "web": ["api", "worker"]}


def test_kahn_batches_put_dependencies_first():
    assert batches(DIAMOND) == [["db"], ["api", "worker"], ["web"]]


def test_cycle_is_named_in_error():
    with pytest.raises(DependencyCycle) as info:
        validate_graph({"a": ["b"], "b": ["c"], "c": ["a"], "d": []})
    cycle = info.value.cycle
    assert cycle[0] == cycle[-1] and set(cycle) == {"a", "b", "c"}
    assert " -> ".join(cycle) in str(info.value)


def test_unknown_dependency_is_named():
    with pytest.raises(InvalidInput, match="'web' depends on unknown service 'cache'"):
        validate_graph({"web": ["cache"]}, what="service")


def test_self_dependency_is_a_cycle():
    with pytest.raises(DependencyCycle, match="a -> a"):
        validate_graph({"a": ["a"]})


def test_critical_path_is_the_longest_chain_by_duration():
    length, path = critical_path(DIAMOND, {"db": 1, "api": 5, "worker": 2, "web": 1})
    assert (length, path) == (7, ["db", "api", "web"])


def test_dependents_are_transitive():
    assert dependents(DIAMOND, "db") == {"api", "worker", "web"}
    assert dependents(DIAMOND, "web") == set()
