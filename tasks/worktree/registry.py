"""`environment_registry.json`: which worktree owns which port, database names, path and process.

The seed's shape (port_allocations, database_allocations, worktree_environments{worktree_path,
port, database_dev, database_test, created_at, status}) plus what the flows need to find a
service again (pid, branch, start command, health URL, monitor counters). Every mutation goes
through the one locked JSON store, so two deployments allocating at once never get one port.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tasks.errors import CoordinationConflict, InvalidInput
from tasks.settings import Settings, get_settings
from tasks.store import JsonStore

REGISTRY_FILE = "environment_registry.json"
# epmd, Prefect's server, PostgreSQL, Redis: never handed out even when free right now
DEFAULT_RESERVED = [4200, 4369, 5432, 6379]

Registry = dict[str, Any]


def empty_registry() -> Registry:
    return {
        "port_allocations": {},
        "database_allocations": {},
        "reserved_ports": list(DEFAULT_RESERVED),
        "worktree_environments": {},
    }


def registry_store(settings: Settings | None = None) -> JsonStore[Registry]:
    settings = settings or get_settings()
    return JsonStore(
        Path(settings.coordination_dir) / REGISTRY_FILE,
        empty_registry,
        lock_timeout_s=settings.lock_timeout_s,
        lock_tries=settings.lock_tries,
    )


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when nothing listens on `port` (a bind test, as the kernel decides). SO_REUSEADDR
    as servers set it: a closed connection's TIME_WAIT does not make a port busy."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def database_names(name: str) -> dict[str, str]:
    base = "".join(c if c.isalnum() else "_" for c in name).lower()
    return {"dev": f"{base}_dev", "test": f"{base}_test"}


def allocate_ports(
    store: JsonStore[Registry],
    requests: dict[str, int | None],
    port_range: tuple[int, int] = (4000, 4999),
    is_free: Callable[[int], bool] = port_is_free,
) -> tuple[dict[str, int], list[str]]:
    """Give every name a port in one locked update: its existing allocation (idempotent), the
    explicit port it asked for, or the lowest free one in `port_range` that is not reserved,
    not allocated and has no live listener. Returns (ports, names newly allocated). An explicit
    port owned by another name, reserved or in use raises and nothing is written."""
    result: dict[str, int] = {}
    new: list[str] = []

    def mutate(reg: Registry) -> None:
        allocations: dict[str, int] = reg.setdefault("port_allocations", {})
        reserved = set(reg.get("reserved_ports", DEFAULT_RESERVED))
        owners = {port: owner for owner, port in allocations.items()}
        chosen: dict[str, int] = {}
        for name, wanted in requests.items():
            have = allocations.get(name)
            if have is not None and (wanted is None or wanted == have):
                chosen[name] = have
                continue
            if have is not None:
                raise CoordinationConflict(
                    f"{name!r} already holds port {have}; tear it down before asking for {wanted}"
                )
            if wanted is not None:
                if wanted in owners:
                    raise CoordinationConflict(
                        f"port {wanted} requested by {name!r} is allocated to "
                        f"{owners[wanted]!r}; choose another port or omit it to get a free one"
                    )
                if wanted in reserved:
                    raise InvalidInput(f"port {wanted} requested by {name!r} is reserved")
                if not is_free(wanted):
                    raise CoordinationConflict(
                        f"port {wanted} requested by {name!r} already has a listener"
                    )
                chosen[name] = wanted
                owners[wanted] = name
        taken = set(owners) | reserved | set(chosen.values())
        candidates = iter(range(port_range[0], port_range[1] + 1))
        for name in requests:
            if name in chosen:
                continue
            for port in candidates:
                if port not in taken and is_free(port):
                    chosen[name] = port
                    taken.add(port)
                    break
            else:
                raise CoordinationConflict(f"no free port left in {port_range} for {name!r}")
        now = datetime.now(UTC).isoformat()
        envs = reg.setdefault("worktree_environments", {})
        dbs = reg.setdefault("database_allocations", {})
        for name, port in chosen.items():
            if name not in allocations:
                new.append(name)
                allocations[name] = port
                dbs[name] = database_names(name)
                envs[name] = {
                    "worktree_path": None,
                    "port": port,
                    "database_dev": dbs[name]["dev"],
                    "database_test": dbs[name]["test"],
                    "created_at": now,
                    "status": "allocated",
                    "pid": None,
                }
        result.update(chosen)

    store.update(mutate)
    return result, new


def release(store: JsonStore[Registry], names: Iterable[str]) -> list[tuple[str, int | None]]:
    """Drop the names' port, database and environment entries; returns (name, port) released."""
    released: list[tuple[str, int | None]] = []
    names = list(names)

    def mutate(reg: Registry) -> None:
        released.clear()
        for name in names:
            port = reg.get("port_allocations", {}).pop(name, None)
            reg.get("database_allocations", {}).pop(name, None)
            env = reg.get("worktree_environments", {}).pop(name, None)
            if port is not None or env is not None:
                released.append((name, port))

    store.update(mutate)
    return list(released)


def update_environment(store: JsonStore[Registry], name: str, **fields: Any) -> dict[str, Any]:
    """Merge `fields` into the name's environment entry (which must exist)."""
    out: dict[str, Any] = {}

    def mutate(reg: Registry) -> None:
        envs = reg.setdefault("worktree_environments", {})
        if name not in envs:
            raise InvalidInput(f"no registered environment named {name!r}")
        envs[name].update(fields)
        out.update(envs[name])

    store.update(mutate)
    return out


def environments(store: JsonStore[Registry]) -> dict[str, dict[str, Any]]:
    return dict(store.read().get("worktree_environments", {}))
