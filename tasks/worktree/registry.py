"""`environment_registry.json`: which worktree owns which port, database names, path and process.

Ports and pids mean something on one machine only, so the registry is local (in the
coordination dir; never in the shared PostgreSQL state) and keyed by host name: each host
reads and writes only its own section, in the registry's original shape (port_allocations,
database_allocations, worktree_environments{worktree_path, port, database_dev, database_test,
created_at, status}) plus what the flows need to find a service again. A file in that original
flat shape is read as this host's section. Every mutation goes through the one locked JSON
store, so two deployments allocating at once never get one port.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tasks.errors import CoordinationConflict, InvalidInput
from tasks.net import port_is_free
from tasks.settings import Settings, get_settings
from tasks.store import JsonStore
from tasks.worktree.environment import database_names
from tasks.worktree.models import (
    EnvironmentEntry,
    EnvironmentStatus,
    HostRegistry,
    RegistryDocument,
)

REGISTRY_FILE = "environment_registry.json"
_FLAT_KEYS = {"port_allocations", "database_allocations", "worktree_environments"}
_FIELDS = set(EnvironmentEntry.model_fields)


def this_host() -> str:
    return socket.gethostname()


class EnvironmentRegistry:
    """This host's section of the registry file."""

    def __init__(self, store: JsonStore[dict[str, Any]], host: str | None = None) -> None:
        self.store = store
        self.host = host or this_host()

    @property
    def path(self) -> Path:
        return self.store.path

    def _document(self, raw: dict[str, Any]) -> RegistryDocument:
        if raw and "hosts" not in raw and _FLAT_KEYS & set(raw):
            return RegistryDocument(hosts={self.host: HostRegistry.model_validate(raw)})
        return RegistryDocument.model_validate(raw)

    def read(self) -> HostRegistry:
        return self._document(self.store.read()).hosts.get(self.host) or HostRegistry()

    def update(self, mutate: Callable[[HostRegistry], None]) -> HostRegistry:
        """Read-modify-write this host's section under the file's lock; other hosts' sections
        are written back unchanged."""
        section: list[HostRegistry] = []

        def change(raw: dict[str, Any]) -> dict[str, Any]:
            document = self._document(raw)
            mine = document.hosts.setdefault(self.host, HostRegistry())
            mutate(mine)
            section[:] = [mine]
            return document.model_dump(mode="json")

        self.store.update(change)
        return section[0]

    def environments(self) -> dict[str, EnvironmentEntry]:
        return dict(self.read().worktree_environments)

    def entry(self, name: str) -> EnvironmentEntry | None:
        return self.read().worktree_environments.get(name)

    def update_environment(self, name: str, **fields: Any) -> EnvironmentEntry:
        """Merge `fields` (names of `EnvironmentEntry` fields) into the name's entry, which
        must exist; the merged entry is validated before it is written."""
        unknown = set(fields) - _FIELDS
        if unknown:
            raise TypeError(f"not registry entry fields: {', '.join(sorted(unknown))}")
        out: list[EnvironmentEntry] = []

        def mutate(reg: HostRegistry) -> None:
            current = reg.worktree_environments.get(name)
            if current is None:
                raise InvalidInput(f"no registered environment named {name!r}")
            merged = EnvironmentEntry.model_validate({**dict(current), **fields})
            reg.worktree_environments[name] = merged
            out.append(merged)

        self.update(mutate)
        return out[0]

    def allocate_ports(
        self,
        requests: dict[str, int | None],
        port_range: tuple[int, int] = (4000, 4999),
        is_free: Callable[[int], bool] = port_is_free,
        run_id: str | None = None,
    ) -> tuple[dict[str, int], list[str]]:
        """Give every name a port in one locked update: its existing allocation (idempotent),
        the explicit port it asked for, or the lowest free one in `port_range` that is not
        reserved, not allocated and has no live listener. Returns (ports, names newly
        allocated). An explicit port owned by another name, reserved or in use raises and
        nothing is written. New entries record `run_id`, the deployment run that made them."""
        result: dict[str, int] = {}
        new: list[str] = []

        def mutate(reg: HostRegistry) -> None:
            chosen = _choose_ports(reg, requests, port_range, is_free)
            now = datetime.now(UTC)
            for name, port in chosen.items():
                if name not in reg.port_allocations:
                    new.append(name)
                    reg.port_allocations[name] = port
                    dbs = reg.database_allocations[name] = database_names(name)
                    reg.worktree_environments[name] = EnvironmentEntry(
                        port=port,
                        database_dev=dbs.dev,
                        database_test=dbs.test,
                        created_at=now,
                        status=EnvironmentStatus.allocated,
                        run_id=run_id,
                    )
            result.update(chosen)

        self.update(mutate)
        return result, new

    def release(self, names: Iterable[str]) -> list[tuple[str, int | None]]:
        """Drop the names' port, database and environment entries; returns (name, port)."""
        released: list[tuple[str, int | None]] = []
        names = list(names)

        def mutate(reg: HostRegistry) -> None:
            released.clear()
            for name in names:
                port = reg.port_allocations.pop(name, None)
                reg.database_allocations.pop(name, None)
                env = reg.worktree_environments.pop(name, None)
                if port is not None or env is not None:
                    released.append((name, port))

        self.update(mutate)
        return list(released)


def _choose_ports(
    reg: HostRegistry,
    requests: dict[str, int | None],
    port_range: tuple[int, int],
    is_free: Callable[[int], bool],
) -> dict[str, int]:
    allocations = reg.port_allocations
    reserved = set(reg.reserved_ports)
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
    return chosen


def registry_store(settings: Settings | None = None) -> JsonStore[dict[str, Any]]:
    settings = settings or get_settings()
    return JsonStore(
        Path(settings.coordination_dir) / REGISTRY_FILE,
        dict,
        lock_timeout_s=settings.lock_timeout_s,
        lock_tries=settings.lock_tries,
    )


def open_registry(settings: Settings | None = None, host: str | None = None) -> EnvironmentRegistry:
    """This host's environment registry in the configured coordination dir."""
    return EnvironmentRegistry(registry_store(settings), host)
