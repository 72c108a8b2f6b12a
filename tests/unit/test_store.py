"""The locked JSON store: no lost updates under process contention; corrupt files kept; file
modes as a plain write gives them; no known secret written.

Child processes come from a fork server, not a fork of this process: by the time these run, the
session's Prefect harness has threads in this process, and a forked child inherits their locks
mid-state."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from tasks.errors import CorruptStore, LockTimeout
from tasks.store import JsonStore
from tests.forkserver import forkserver

PROCESSES = 8
# 8 processes keep contending for the lock all along (≈ 5 ms per locked, fsynced update): a
# lost update shows at 200 each as at 500 (which took 12 s of a full run)
INCREMENTS = 200


def _increment(path: str, n: int) -> None:
    store = JsonStore(Path(path), dict, lock_timeout_s=60)
    for _ in range(n):
        store.update(lambda d: d.__setitem__("count", d.get("count", 0) + 1))


def _hold_lock(path: str, ready, release) -> None:
    from filelock import FileLock

    with FileLock(f"{path}.lock"):
        ready.set()
        release.wait(30)


@pytest.fixture(scope="module")
def ctx():
    # one fork server for the module's process tests (starting one costs an interpreter)
    with forkserver(__name__) as context:
        yield context


def test_8_processes_x_200_increments_lose_nothing(ctx, tmp_path):
    path = tmp_path / "counter.json"
    procs = [ctx.Process(target=_increment, args=(str(path), INCREMENTS)) for _ in range(PROCESSES)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=240)
        assert p.exitcode == 0
    assert JsonStore(path, dict).read()["count"] == PROCESSES * INCREMENTS


def test_corrupt_file_raises_naming_it_and_is_left_intact(tmp_path):
    path = tmp_path / "work_claims.json"
    path.write_text('[{"work_item_id": "work_1",')
    store = JsonStore(path, list)
    with pytest.raises(CorruptStore, match=r"work_claims\.json"):
        store.read()
    with pytest.raises(CorruptStore):
        store.update(lambda items: items.append({"x": 1}))
    assert path.read_text() == '[{"work_item_id": "work_1",'


def test_missing_file_reads_as_default_and_update_creates_it(tmp_path):
    store = JsonStore(tmp_path / "sub" / "agents.json", list)
    assert store.read() == []
    store.update(lambda items: items.append({"agent_id": "a"}))
    assert json.loads((tmp_path / "sub" / "agents.json").read_text()) == [{"agent_id": "a"}]


def test_failed_mutation_leaves_the_file_unchanged(tmp_path):
    store = JsonStore(tmp_path / "x.json", dict)
    store.write({"a": 1})

    def boom(d):
        d["a"] = 2
        raise RuntimeError("mutation failed")

    with pytest.raises(RuntimeError):
        store.update(boom)
    assert store.read() == {"a": 1}
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_lock_held_elsewhere_times_out_with_a_clear_error(ctx, tmp_path):

    path = tmp_path / "held.json"
    ready, release = ctx.Event(), ctx.Event()
    p = ctx.Process(target=_hold_lock, args=(str(path), ready, release))
    p.start()
    try:
        assert ready.wait(10)
        store = JsonStore(path, dict, lock_timeout_s=0.3, lock_tries=2)
        with pytest.raises(LockTimeout, match=r"held\.json"):
            store.update(lambda d: d)
    finally:
        release.set()
        p.join(10)


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_a_new_store_file_follows_the_umask(tmp_path, umask_022):
    store = JsonStore(tmp_path / "registry.json", dict)
    store.write({"a": 1})
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o644  # not mkstemp's 0600


def test_a_replaced_store_file_keeps_its_mode(tmp_path, umask_022):
    store = JsonStore(tmp_path / "registry.json", dict)
    store.write({"a": 1})
    store.path.chmod(0o640)
    store.update(lambda d: d.__setitem__("a", 2))
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o640
    assert store.read() == {"a": 2}


def test_dataset_files_are_readable_by_other_users(tmp_path, umask_022):
    # imported here: the child processes of the tests above import this module, and pandas
    # would make their start slower than the lock test waits for
    from pydantic import create_model

    from tasks.export import export_dataset

    row = create_model("Row", n=(int, ...))
    exported = export_dataset([{"n": 1}], "modes", "run-1", row, root=tmp_path)
    modes = {f.format: stat.S_IMODE(f.path.stat().st_mode) for f in exported.files}
    assert set(modes.values()) == {0o644}, modes
    assert stat.S_IMODE(exported.manifest.stat().st_mode) == 0o644


def test_no_known_secret_is_written_to_a_store_but_its_keys_are_kept(tmp_path, monkeypatch):
    monkeypatch.setenv("UPSTREAM_API_SECRET", "s3cret-store-value-42")
    store = JsonStore(tmp_path / "agents.json", dict)
    store.write({"fencing_token": 7, "error": "rejected s3cret-store-value-42"})
    assert b"s3cret-store-value-42" not in store.path.read_bytes()
    assert store.read() == {"fencing_token": 7, "error": "rejected [REDACTED]"}
