"""Port allocation in environment_registry.json: idempotent, locked, OS-checked."""

from __future__ import annotations

import multiprocessing
import socket

import pytest

from tasks.errors import CoordinationConflict, InvalidInput
from tasks.store import JsonStore
from tasks.worktree.registry import (
    allocate_ports,
    empty_registry,
    port_is_free,
    release,
)
from tests.unit.worktree.helpers import port_range


def store(tmp_path):
    return JsonStore(tmp_path / "environment_registry.json", empty_registry)


def test_allocation_is_idempotent_per_name_and_seed_shaped(tmp_path):
    s, rng = store(tmp_path), port_range()
    first, new = allocate_ports(s, {"api": None, "web": None}, rng)
    again, new_again = allocate_ports(s, {"api": None, "web": None}, rng)
    assert first == again and new == ["api", "web"] and new_again == []
    assert len(set(first.values())) == 2
    reg = s.read()
    env = reg["worktree_environments"]["api"]
    assert reg["port_allocations"]["api"] == first["api"] == env["port"]
    assert reg["database_allocations"]["api"] == {"dev": "api_dev", "test": "api_test"}
    assert {
        "worktree_path",
        "port",
        "database_dev",
        "database_test",
        "created_at",
        "status",
    } <= set(env)


def test_ports_with_a_live_listener_reserved_or_allocated_are_skipped(tmp_path):
    s = store(tmp_path)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        busy = listener.getsockname()[1]
        assert not port_is_free(busy)
        reg = empty_registry()
        reg["reserved_ports"].append(busy + 1)
        s.write(reg)
        allocate_ports(s, {"old": busy + 2}, (busy + 2, busy + 2))
        ports, _ = allocate_ports(s, {"new": None}, (busy, busy + 5))
    assert ports["new"] == busy + 3


def test_explicit_port_owned_by_another_name_is_a_clear_error_and_nothing_is_written(tmp_path):
    s = store(tmp_path)
    ports, _ = allocate_ports(s, {"api": None}, port_range())
    before = s.read()
    with pytest.raises(CoordinationConflict, match=f"port {ports['api']} .* allocated to 'api'"):
        allocate_ports(s, {"fresh": None, "web": ports["api"]}, port_range())
    assert s.read() == before


def test_reserved_explicit_port_is_refused(tmp_path):
    with pytest.raises(InvalidInput, match=r"port 4369 .* reserved"):
        allocate_ports(store(tmp_path), {"epmd": 4369})


def test_release_drops_every_trace_of_the_name(tmp_path):
    s = store(tmp_path)
    ports, _ = allocate_ports(s, {"api": None, "web": None}, port_range())
    assert release(s, ["api"]) == [("api", ports["api"])]
    reg = s.read()
    assert "api" not in reg["port_allocations"]
    assert "api" not in reg["database_allocations"]
    assert "api" not in reg["worktree_environments"]
    assert "web" in reg["port_allocations"]


def _allocate_many(path, prefix, rng, start, out):
    s = JsonStore(path, empty_registry, lock_timeout_s=30, lock_tries=8)
    start.wait()
    got = {}
    for i in range(15):
        ports, _ = allocate_ports(s, {f"{prefix}-{i}": None}, rng)
        got.update(ports)
    out.put(got)


def test_two_processes_allocating_at_once_never_get_the_same_port(tmp_path):
    ctx = multiprocessing.get_context("fork")
    start, out = ctx.Event(), ctx.Queue()
    rng = port_range(60)
    path = tmp_path / "environment_registry.json"
    procs = [
        ctx.Process(target=_allocate_many, args=(path, p, rng, start, out)) for p in ("a", "b")
    ]
    for p in procs:
        p.start()
    start.set()
    results = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=10)
    ports = [port for r in results for port in r.values()]
    assert len(ports) == 30
    assert len(set(ports)) == 30, "two deployments were handed the same port"
    assert JsonStore(path, empty_registry).read()["port_allocations"] == {
        k: v for r in results for k, v in r.items()
    }
