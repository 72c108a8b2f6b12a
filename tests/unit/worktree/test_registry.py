"""Port allocation in environment_registry.json: idempotent, locked, OS-checked, per host."""

from __future__ import annotations

import contextlib
import json
import random
import socket

import pytest

from tasks.errors import CoordinationConflict, InvalidInput
from tasks.net import port_is_free
from tasks.store import JsonStore
from tasks.worktree.models import DEFAULT_RESERVED, EnvironmentEntry
from tasks.worktree.registry import EnvironmentRegistry, this_host
from tests.forkserver import forkserver
from tests.unit.worktree.helpers import port_range


def registry(tmp_path, host: str | None = None) -> EnvironmentRegistry:
    return EnvironmentRegistry(JsonStore(tmp_path / "environment_registry.json", dict), host)


def test_allocation_is_idempotent_per_name_and_keeps_the_original_shape(tmp_path):
    r, rng = registry(tmp_path), port_range()
    first, new = r.allocate_ports({"api": None, "web": None}, rng)
    again, new_again = r.allocate_ports({"api": None, "web": None}, rng)
    assert first == again and new == ["api", "web"] and new_again == []
    assert len(set(first.values())) == 2
    section = json.loads(r.path.read_text())["hosts"][this_host()]
    env = section["worktree_environments"]["api"]
    assert section["port_allocations"]["api"] == first["api"] == env["port"]
    assert section["database_allocations"]["api"] == {"dev": "api_dev", "test": "api_test"}
    assert {
        "worktree_path",
        "port",
        "database_dev",
        "database_test",
        "created_at",
        "status",
    } <= set(env)


def test_ports_with_a_live_listener_reserved_or_allocated_are_skipped(tmp_path):
    r = registry(tmp_path)
    # below the kernel's ephemeral range, where no client socket lands; other tests' services
    # come and go there, so the listener takes the first block it can bind (SO_REUSEADDR, as
    # servers set it: a stopped service's TIME_WAIT is no obstacle)
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        for busy in random.sample(range(21000, 29000, 8), 200):
            if all(port_is_free(busy + i) for i in range(6)):
                with contextlib.suppress(OSError):
                    listener.bind(("127.0.0.1", busy))
                    break
        else:
            pytest.fail("no block of 6 free ports in 21000-29000")
        listener.listen()
        assert not port_is_free(busy)
        r.update(lambda reg: reg.reserved_ports.append(busy + 1))
        r.allocate_ports({"old": busy + 2}, (busy + 2, busy + 2))
        ports, _ = r.allocate_ports({"new": None}, (busy, busy + 5))
    assert ports["new"] == busy + 3


def test_explicit_port_owned_by_another_name_is_a_clear_error_and_nothing_is_written(tmp_path):
    r = registry(tmp_path)
    ports, _ = r.allocate_ports({"api": None}, port_range())
    before = r.path.read_bytes()
    with pytest.raises(CoordinationConflict, match=f"port {ports['api']} .* allocated to 'api'"):
        r.allocate_ports({"fresh": None, "web": ports["api"]}, port_range())
    assert r.path.read_bytes() == before


def test_reserved_explicit_port_is_refused(tmp_path):
    assert 4369 in DEFAULT_RESERVED
    with pytest.raises(InvalidInput, match=r"port 4369 .* reserved"):
        registry(tmp_path).allocate_ports({"epmd": 4369})


def test_release_drops_every_trace_of_the_name(tmp_path):
    r = registry(tmp_path)
    ports, _ = r.allocate_ports({"api": None, "web": None}, port_range())
    assert r.release(["api"]) == [("api", ports["api"])]
    reg = r.read()
    assert "api" not in reg.port_allocations
    assert "api" not in reg.database_allocations
    assert "api" not in reg.worktree_environments
    assert "web" in reg.port_allocations


def test_each_host_allocates_and_releases_only_in_its_own_section(tmp_path):
    here, there = registry(tmp_path, "here"), registry(tmp_path, "there")
    rng = port_range()
    mine, _ = here.allocate_ports({"api": None}, rng)
    theirs, _ = there.allocate_ports({"api": None}, rng)
    assert mine == theirs  # the same port number on two machines is two different ports
    here.release(["api"])
    assert there.entry("api") is not None and there.read().port_allocations == theirs
    assert set(json.loads(here.path.read_text())["hosts"]) == {"here", "there"}


def test_the_default_host_is_this_machines_name(tmp_path):
    r = registry(tmp_path)
    r.allocate_ports({"api": None}, port_range())
    assert r.host == socket.gethostname()
    assert list(json.loads(r.path.read_text())["hosts"]) == [socket.gethostname()]


def test_a_registry_in_the_original_flat_shape_is_read_as_this_hosts(tmp_path):
    flat = {
        "port_allocations": {"api": 4100},
        "database_allocations": {"api": {"dev": "api_dev", "test": "api_test"}},
        "reserved_ports": [4200],
        "worktree_environments": {
            "api": {
                "worktree_path": "/w/api",
                "port": 4100,
                "database_dev": "api_dev",
                "database_test": "api_test",
                "created_at": "2026-01-01T00:00:00+00:00",
                "status": "healthy",
                "pid": 12345,
            }
        },
    }
    r = registry(tmp_path)
    r.path.write_text(json.dumps(flat))
    entry = r.entry("api")
    # a bare pid from before identities were recorded is kept, but never matches a process
    assert entry.port == 4100 and entry.pid == 12345 and entry.process.create_time is None
    ports, new = r.allocate_ports({"api": None, "web": None}, port_range())
    assert ports["api"] == 4100 and new == ["web"]
    assert set(json.loads(r.path.read_text())["hosts"][this_host()]["port_allocations"]) == {
        "api",
        "web",
    }


def test_secret_values_never_reach_the_registry(tmp_path):
    r = registry(tmp_path)
    r.allocate_ports({"api": None}, port_range())
    env = {"API_SECRET": "s3cr3t-value-1", "STRIPE_KEY": "sk_live_abcdef", "MODE": "dev"}
    r.update_environment("api", service_env=env)
    text = r.path.read_text()
    assert "s3cr3t-value-1" not in text and "sk_live_abcdef" not in text
    assert r.entry("api").service_env == {
        "API_SECRET": "[REDACTED]",
        "STRIPE_KEY": "[REDACTED]",
        "MODE": "dev",
    }


def test_unknown_entry_fields_are_refused(tmp_path):
    r = registry(tmp_path)
    r.allocate_ports({"api": None}, port_range())
    with pytest.raises(TypeError, match="pidd"):
        r.update_environment("api", pidd=1)
    assert isinstance(r.entry("api"), EnvironmentEntry)


def _allocate_many(path, prefix, rng, start, out):
    r = EnvironmentRegistry(JsonStore(path, dict, lock_timeout_s=30, lock_tries=8))
    start.wait()
    got = {}
    for i in range(15):
        ports, _ = r.allocate_ports({f"{prefix}-{i}": None}, rng)
        got.update(ports)
    out.put(got)


def test_two_processes_allocating_at_once_never_get_the_same_port(tmp_path):
    rng = port_range(60)
    path = tmp_path / "environment_registry.json"
    with forkserver(__name__) as ctx:
        start, out = ctx.Event(), ctx.Queue()
        procs = [
            ctx.Process(target=_allocate_many, args=(path, p, rng, start, out)) for p in ("a", "b")
        ]
        for p in procs:
            p.start()
        start.set()
        results = [out.get(timeout=120) for _ in procs]
        for p in procs:
            p.join(timeout=10)
    ports = [port for r in results for port in r.values()]
    assert len(ports) == 30
    assert len(set(ports)) == 30, "two deployments were handed the same port"
    assert registry(tmp_path).read().port_allocations == {
        k: v for r in results for k, v in r.items()
    }
