"""The exporter on a real S3 server (SeaweedFS, started once per session on loopback): the same
layout as on a local disk, one PUT per data file, the manifest created last as the commit
marker, Delta Lake commits that never take a run twice, readers that get the right rows and
dtypes, and faults that end in one clear error naming the URI, bucket or endpoint, never a key.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pytest
import s3fs
from deltalake import DeltaTable
from pydantic import BaseModel
from typer.testing import CliRunner

from tasks.errors import InvalidInput, StoreUnavailable
from tasks.export import FORMATS, export_dataset, read_export, read_manifest
from tasks.storage import Storage, open_storage
from tests.loopback import free_port


class Doc(BaseModel):
    document_id: str
    words: int
    quality: float
    passed: bool
    created_at: datetime
    components: dict[str, Any]


DAY = date(2026, 12, 1)
SAMPLES = str(Path("samples/spr").resolve())  # the tests run from the repository root


def _records(n: int, tag: str = "") -> list[dict]:
    return [
        {
            "document_id": f"doc-{tag}{i}",
            "words": 100 + i,
            "quality": i / 10,
            "passed": i % 2 == 0,
            "created_at": datetime(2026, 12, 1, 12, i, tzinfo=UTC),
            "components": {"recall": i / 10, "tags": ["a", "b, c"]},
        }
        for i in range(n)
    ]


def _fs() -> s3fs.S3FileSystem:
    return s3fs.S3FileSystem(skip_instance_cache=True)


def _objects(prefix: str) -> list[str]:
    """The objects under `prefix` (SeaweedFS also lists the folders it keeps)."""
    fs = _fs()
    return [key for key in fs.find(prefix) if not fs.isdir(key)]


def test_every_format_lands_in_the_layout_and_reads_back_like_a_local_export(s3_env, tmp_path):
    root = f"s3://{s3_env}/exports"
    remote = export_dataset(_records(4), "d", "run-1", Doc, FORMATS, root=root, day=DAY)
    local = export_dataset(_records(4), "d", "run-1", Doc, FORMATS, root=tmp_path, day=DAY)
    keys = sorted(k.removeprefix(f"{s3_env}/exports/") for k in _fs().find(f"{s3_env}/exports"))
    data = [k for k in keys if not k.startswith(("delta/", "_manifests/"))]
    assert data == sorted(f"{f}/d/date=2026-12-01/run-1.{f}" for f in FORMATS if f != "delta")
    assert "_manifests/d/date=2026-12-01/run-1.json" in keys
    assert any(k.startswith("delta/d/_delta_log/") for k in keys)
    for there, here in zip(remote.files, local.files, strict=True):
        if there.format != "delta":
            pd.testing.assert_frame_equal(read_export(there.path), read_export(here.path))
            assert there.sha256 == here.sha256
    manifest = read_manifest(remote.files[0].path)
    assert manifest["files"]["parquet"]["file"] == "parquet/d/date=2026-12-01/run-1.parquet"
    assert manifest["files"]["delta"]["version"] == 0


def test_pandas_pyarrow_duckdb_and_deltalake_read_every_run(s3_env):
    root = f"s3://{s3_env}/x"
    for i, day in enumerate((date(2026, 12, 1), date(2026, 12, 2))):
        export_dataset(_records(3, str(i)), "d", f"r{i}", Doc, ["parquet", "delta"], root, day)
    frame = pd.read_parquet(f"{root}/parquet/d")
    assert len(frame) == 6
    assert str(frame["words"].dtype) == "Int64"
    assert str(frame["created_at"].dtype) == "datetime64[us, UTC]"
    assert sorted(frame["date"].astype(str).unique()) == ["2026-12-01", "2026-12-02"]

    table = ds.dataset(f"{s3_env}/x/parquet/d", filesystem=_fs(), partitioning="hive")
    assert table.count_rows() == 6
    assert table.schema.field("created_at").type == pa.timestamp("us", tz="UTC")

    con = duckdb.connect()
    con.register_filesystem(_fs())
    got = con.sql(
        f"select count(*), sum(words), typeof(any_value(created_at)) "
        f"from read_parquet('{root}/parquet/d/*/*.parquet', hive_partitioning = true)"
    ).fetchall()[0]
    assert got == (6, 2 * (100 + 101 + 102), "TIMESTAMP WITH TIME ZONE")

    delta = DeltaTable(f"{root}/delta/d", storage_options={"allow_http": "true"})
    assert delta.version() == 1  # one commit per run
    rows = delta.to_pandas()
    assert len(rows) == 6
    assert delta.schema().to_arrow().field("words").type == pa.int64()
    assert delta.metadata().partition_columns == ["date"]


def test_a_resumed_run_rewrites_the_same_keys_and_appends_its_delta_rows_once(s3_env):
    root = f"s3://{s3_env}/x"
    real_create = Storage.create
    calls = []

    def crash_at_commit(self, location, data):  # the process dies before the manifest lands
        calls.append(location)
        raise ConnectionResetError("killed before the manifest")

    Storage.create = crash_at_commit
    try:
        with pytest.raises(ConnectionResetError):
            export_dataset(_records(3), "d", "run-7", Doc, ["parquet", "delta"], root, DAY)
    finally:
        Storage.create = real_create
    assert calls and not _fs().exists(str(calls[0]))  # no manifest: the run is not committed
    first = export_dataset(_records(3), "d", "run-7", Doc, ["parquet", "delta"], root, DAY)
    again = export_dataset(_records(3), "d", "run-7", Doc, ["parquet", "delta"], root, DAY)
    assert again.manifest == first.manifest
    assert len(_fs().find(f"{s3_env}/x/parquet")) == 1
    delta = DeltaTable(f"{root}/delta/d", storage_options={"allow_http": "true"})
    assert len(delta.to_pandas()) == 3


def test_a_run_whose_data_did_not_land_leaves_no_manifest(s3_env, monkeypatch):
    root = f"s3://{s3_env}/x"
    placed = []

    def put_many(self, files):  # the first PUT lands, then the store stops answering
        location, data = next(iter(files.items()))
        self.put(location, data)
        placed.append(location)
        raise StoreUnavailable("cannot reach the object store")

    monkeypatch.setattr(Storage, "put_many", put_many)
    with pytest.raises(StoreUnavailable):
        export_dataset(_records(2), "d", "r", Doc, root=root, day=DAY)
    assert placed, "the first data file landed before the failure"
    assert _objects(f"{s3_env}/x") == []  # no manifest, and the placed file removed


_WRITER = """
import sys
from datetime import date
from pydantic import BaseModel
from tasks.export import export_dataset
class Row(BaseModel):
    run: str
    n: int
root, name = sys.argv[1], sys.argv[2]
for i in range(3):
    rows = [{"run": f"{name}-{i}", "n": j} for j in range(5)]
    export_dataset(rows, "shared", f"{name}-{i}", Row, ["parquet", "delta"], root,
                   date(2026, 12, 1))
"""


def test_two_processes_export_into_one_dataset_at_once(s3_env):
    root = f"s3://{s3_env}/x"
    procs = [
        subprocess.Popen([sys.executable, "-c", _WRITER, root, name], env=dict(os.environ))
        for name in ("a", "b")
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    frame = pd.read_parquet(f"{root}/parquet/shared")
    assert len(frame) == 30
    delta = DeltaTable(f"{root}/delta/shared", storage_options={"allow_http": "true"}).to_pandas()
    assert sorted(delta["run"].unique()) == sorted(f"{n}-{i}" for n in "ab" for i in range(3))
    assert len(delta) == 30  # nothing lost, nothing twice
    assert len(_objects(f"{s3_env}/x/_manifests")) == 6


def test_delta_on_a_local_root(tmp_path):
    export_dataset(_records(2), "d", "r1", Doc, ["delta"], tmp_path, DAY)
    export_dataset(_records(2), "d", "r1", Doc, ["delta"], tmp_path, DAY)
    export_dataset(_records(3), "d", "r2", Doc, ["delta"], tmp_path, DAY)
    table = DeltaTable(str(tmp_path / "delta" / "d"))
    assert len(table.to_pandas()) == 5
    assert json.loads((tmp_path / "_manifests/d/date=2026-12-01/r2.json").read_text())["rows"] == 3


# -- bad input and faults: one `error:` line naming the URI, bucket or endpoint, never a key -----
def _batch(out: str) -> tuple[int, str]:
    from reactor.cli import app

    result = CliRunner().invoke(app, ["spr", "batch", SAMPLES, "--out", out])
    return result.exit_code, result.output


def _one_error(output: str, *names: str) -> str:
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, output
    assert "Traceback" not in output
    for name in names:
        assert name in errors[0], errors[0]
    return errors[0]


def test_an_unknown_scheme_is_an_error_never_a_local_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, output = _batch("ftp://host/exports")
    assert code != 0
    _one_error(output, "ftp://host/exports", "ftp")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(InvalidInput, match="unknown scheme"):
        open_storage("s4://bucket")


def test_a_missing_bucket_is_named_and_never_created(s3_env):
    code, output = _batch(f"s3://{s3_env}-missing/exports")
    assert code != 0
    _one_error(output, f"{s3_env}-missing", os.environ["AWS_ENDPOINT_URL"])
    assert not _fs().exists(f"{s3_env}-missing")


def test_nothing_listening_names_the_endpoint(s3_env, monkeypatch):
    endpoint = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    code, output = _batch(f"s3://{s3_env}/exports")
    assert code != 0
    _one_error(output, endpoint, s3_env)


def test_wrong_keys_and_no_permission_fail_without_showing_the_secret(
    s3_server, s3_env, monkeypatch
):
    secret = "wrong-secret-value-123456"
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    code, output = _batch(f"s3://{s3_env}/exports")
    assert code != 0
    _one_error(output, s3_env, os.environ["AWS_ENDPOINT_URL"])
    assert secret not in output

    reader = s3_server.add_user("reader", "Read,List")
    for name, value in reader.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(StoreUnavailable, match="access denied") as denied:
        export_dataset(_records(1), "d", "r", Doc, root=f"s3://{s3_env}/x", day=DAY)
    assert s3_env in str(denied.value)
    assert reader["AWS_SECRET_ACCESS_KEY"] not in str(denied.value)
    assert _objects(f"{s3_env}/x") == []


def test_the_aws_secret_and_session_token_are_redacted(monkeypatch):
    from tasks.redaction import known_secrets, redact

    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s3cr3t-key-value-9876")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "session-token-value-5432")
    assert {"s3cr3t-key-value-9876", "session-token-value-5432"} <= set(known_secrets())
    assert "s3cr3t" not in str(redact({"note": "key s3cr3t-key-value-9876"}))


def test_the_s3_server_logs_only_to_its_own_log_file(s3_server):
    """`make objectstore`'s server: its log in its root, no log files of its own in the temp dir
    (SeaweedFS writes `weed.<host>.<user>.log.<LEVEL>.<time>.<pid>` there unless told not to)."""
    pid = s3_server.server.state()["process"]["pid"]
    assert not list(Path(tempfile.gettempdir()).glob(f"weed.*.{pid}"))
    assert s3_server.server.log.is_file() and s3_server.server.log.stat().st_size > 0
