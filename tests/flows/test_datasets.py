"""Datasets read as datasets: two real runs of every flow that exports, then each dataset's
folder is read whole by pandas, pyarrow (hive partitioning) and DuckDB with the right row counts
and types, and the CSV and JSONL folders agree with the Parquet one."""

from __future__ import annotations

import asyncio
import inspect
import json
import random
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from tasks.export import Column, normalize

DATASETS = [
    "spr_results",
    "swarm_assignments",
    "swarm_claims",
    "swarm_timeline",
    "trace_hops",
    "worktree_deployments",
]
RUNS = 2  # several runs in one folder, read as one dataset

ARROW = {
    Column.int: pa.int64(),
    Column.float: pa.float64(),
    Column.str: pa.string(),
    Column.bool: pa.bool_(),
    Column.timestamp: pa.timestamp("us", tz="UTC"),
    Column.json: pa.string(),
}
PANDAS = {
    Column.int: "Int64",
    Column.float: "float64",
    Column.bool: "boolean",
    Column.timestamp: "datetime64[us, UTC]",
}
DUCKDB = {
    Column.int: "BIGINT",
    Column.float: "DOUBLE",
    Column.str: "VARCHAR",
    Column.bool: "BOOLEAN",
    Column.timestamp: "TIMESTAMP WITH TIME ZONE",
    Column.json: "VARCHAR",
}


def run(flow, *args):
    """Call a flow from sync code, whether it is `def` or `async def`."""
    result = flow(*args)
    return asyncio.run(result) if inspect.isawaitable(result) else result


def _spr(n: int) -> None:
    from flows.spr_pipeline import sample_request, spr_pipeline

    for _ in range(n):
        run(spr_pipeline, sample_request())


def _swarm(n: int) -> None:
    from flows.swarm_coordination import load_sample, swarm_coordination

    for _ in range(n):
        run(swarm_coordination, load_sample())


def _trace(n: int) -> None:
    from flows.trace_orchestration import trace_orchestration
    from tasks.trace.sample import rebase_urls, sample_trace_request
    from tasks.trace.standins import Behaviour, StandinConfig, run_standins

    fast = StandinConfig(
        instances={name: Behaviour(latency_ms=5) for name in ("phoenix", "n8n", "xavos", "audit")}
    )
    with run_standins(fast) as standins:
        for _ in range(n):
            run(trace_orchestration, rebase_urls(sample_trace_request(), standins.base_url))


def _worktree(n: int, root: Path) -> None:
    from flows.worktree_deployment import worktree_deployment
    from flows.worktree_teardown import worktree_teardown
    from tasks.worktree.models import DeploymentRequest, TeardownRequest
    from tasks.worktree.sample_repo import make_sample_repo

    repo = make_sample_repo(root / "repo", ["db"])
    low = random.randrange(20000, 59000)
    try:
        for _ in range(n):
            request = DeploymentRequest(
                repo_path=repo,
                worktrees=[
                    {
                        "name": "db",
                        "branch": "service/db",
                        "type": "python",
                        "start_command": ["python", "service.py"],
                    }
                ],
                health_poll_interval_s=0.1,
                health_check_timeout_s=15,
                port_range=(low, low + 40),
            )
            run(worktree_deployment, request)
            run(worktree_teardown, TeardownRequest(repo_path=repo))
    finally:
        run(worktree_teardown, TeardownRequest(repo_path=repo))


@pytest.fixture(scope="module")
def exports(tmp_path_factory) -> Path:
    """RUNS runs of every exporting flow into one exports root."""
    root = tmp_path_factory.mktemp("datasets")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("REACTOR_COORDINATION_DIR", str(root / "coordination"))
        mp.setenv("REACTOR_EXPORTS_DIR", str(root / "exports"))
        _spr(RUNS)
        _swarm(RUNS)
        _trace(RUNS)
        _worktree(RUNS, root)
    return root / "exports"


def _manifests(exports: Path, dataset: str) -> list[dict]:
    return [json.loads(p.read_text()) for p in (exports / "_manifests" / dataset).rglob("*.json")]


def _schema(exports: Path, dataset: str) -> dict[str, Column]:
    schemas = {json.dumps(m["schema"]) for m in _manifests(exports, dataset)}
    assert len(schemas) == 1, f"{dataset}: runs were written with different schemas"
    return {name: Column(kind) for name, kind in json.loads(schemas.pop()).items()}


def _expected_rows(exports: Path, dataset: str) -> int:
    manifests = _manifests(exports, dataset)
    assert len({m["run_id"] for m in manifests}) == RUNS, f"{dataset}: expected {RUNS} runs"
    return sum(m["rows"] for m in manifests)


@pytest.mark.parametrize("dataset", DATASETS)
def test_data_folders_hold_only_data_files(exports, dataset):
    for fmt in ("json", "jsonl", "csv", "parquet"):
        folder = exports / fmt / dataset
        files = [p for p in folder.rglob("*") if p.is_file()]
        assert len(files) == RUNS, f"{folder}: {files}"
        assert all(p.suffix == f".{fmt}" and p.parent.name.startswith("date=") for p in files)


@pytest.mark.parametrize("dataset", DATASETS)
def test_pandas_reads_the_parquet_folder_as_one_table(exports, dataset):
    schema = _schema(exports, dataset)
    frame = pd.read_parquet(exports / "parquet" / dataset)
    assert len(frame) == _expected_rows(exports, dataset)
    assert list(frame.columns) == [*schema, "date"]
    for name, kind in schema.items():
        if kind in PANDAS:
            assert str(frame[name].dtype) == PANDAS[kind], f"{dataset}.{name}"
        else:  # text and JSON text
            assert pd.api.types.is_string_dtype(frame[name].dtype), f"{dataset}.{name}"


@pytest.mark.parametrize("dataset", DATASETS)
def test_pyarrow_reads_the_folder_with_hive_partitioning(exports, dataset):
    schema = _schema(exports, dataset)
    table = ds.dataset(exports / "parquet" / dataset, format="parquet", partitioning="hive")
    assert table.count_rows() == _expected_rows(exports, dataset)
    for name, kind in schema.items():
        assert table.schema.field(name).type == ARROW[kind], f"{dataset}.{name}"
    assert "date" in table.schema.names


@pytest.mark.parametrize("dataset", DATASETS)
def test_duckdb_reads_the_folder_with_hive_partitioning(exports, dataset):
    schema = _schema(exports, dataset)
    glob = (exports / "parquet" / dataset).as_posix() + "/**/*.parquet"
    relation = duckdb.sql(f"select * from read_parquet('{glob}', hive_partitioning = true)")
    assert len(relation.fetchall()) == _expected_rows(exports, dataset)
    types = dict(zip(relation.columns, map(str, relation.types), strict=True))
    for name, kind in schema.items():
        assert types[name] == DUCKDB[kind], f"{dataset}.{name}"
    assert types["date"] == "DATE"


def _ordered(frame: pd.DataFrame, schema: dict[str, Column]) -> pd.DataFrame:
    keys = [n for n, k in schema.items() if k is not Column.json]
    return frame.sort_values(keys, na_position="first").reset_index(drop=True)


@pytest.mark.parametrize("dataset", DATASETS)
def test_csv_and_jsonl_folders_agree_with_parquet(exports, dataset):
    schema = _schema(exports, dataset)
    parquet = normalize(pd.read_parquet(exports / "parquet" / dataset), schema)
    text = {n: "string" for n, k in schema.items() if k in (Column.str, Column.json)}
    csv = pd.concat(
        pd.read_csv(p, dtype=text) for p in sorted((exports / "csv" / dataset).rglob("*.csv"))
    )
    jsonl = pd.concat(
        pd.read_json(p, lines=True, dtype=False, convert_dates=False)
        for p in sorted((exports / "jsonl" / dataset).rglob("*.jsonl"))
    )
    pd.testing.assert_frame_equal(
        _ordered(normalize(jsonl, schema), schema), _ordered(parquet, schema), obj=dataset
    )
    # CSV has one spelling for an empty string and a missing value: an empty field
    blank = parquet.copy()
    for name, kind in schema.items():
        if kind is Column.str:
            blank[name] = blank[name].replace("", pd.NA)
    pd.testing.assert_frame_equal(
        _ordered(normalize(csv, schema), schema), _ordered(blank, schema), obj=dataset
    )


# -- the same flows with an object-store root (the session's SeaweedFS) ---------------------------
@pytest.fixture(scope="module")
def s3_exports(s3_server, tmp_path_factory) -> str:
    """One run of every exporting flow into `s3://<bucket>/exports`."""
    root = tmp_path_factory.mktemp("s3-datasets")
    bucket = s3_server.fresh_bucket("datasets")
    with pytest.MonkeyPatch.context() as mp:
        for name, value in s3_server.env().items():
            mp.setenv(name, value)
        mp.setenv("REACTOR_COORDINATION_DIR", str(root / "coordination"))
        mp.setenv("REACTOR_EXPORTS_DIR", f"s3://{bucket}/exports")
        _spr(1)
        _swarm(1)
        _trace(1)
        _worktree(1, root)
        yield f"s3://{bucket}/exports"


def _s3fs():
    import s3fs

    return s3fs.S3FileSystem(skip_instance_cache=True)


@pytest.mark.parametrize("dataset", DATASETS)
def test_every_flow_exports_to_s3_and_the_readers_get_the_rows(s3_exports, dataset):
    fs = _s3fs()
    manifests = [json.loads(fs.cat_file(k)) for k in fs.find(f"{s3_exports}/_manifests/{dataset}")]
    assert len(manifests) == 1, f"{dataset}: one run, one manifest"
    schema = {name: Column(kind) for name, kind in manifests[0]["schema"].items()}
    rows = manifests[0]["rows"]
    for fmt in ("json", "jsonl", "csv", "parquet"):
        keys = [k for k in fs.find(f"{s3_exports}/{fmt}/{dataset}") if not fs.isdir(k)]
        assert len(keys) == 1 and keys[0].endswith(f".{fmt}"), keys
    frame = pd.read_parquet(f"{s3_exports}/parquet/{dataset}")
    assert len(frame) == rows
    for name, kind in schema.items():
        if kind in PANDAS:
            assert str(frame[name].dtype) == PANDAS[kind], f"{dataset}.{name}"
    table = ds.dataset(
        s3_exports.removeprefix("s3://") + f"/parquet/{dataset}", filesystem=fs, partitioning="hive"
    )
    assert table.count_rows() == rows
    con = duckdb.connect()
    con.register_filesystem(fs)
    relation = con.sql(
        f"select * from read_parquet('{s3_exports}/parquet/{dataset}/*/*.parquet', "
        "hive_partitioning = true)"
    )
    assert len(relation.fetchall()) == rows
    types = dict(zip(relation.columns, map(str, relation.types), strict=True))
    for name, kind in schema.items():
        assert types[name] == DUCKDB[kind], f"{dataset}.{name}"


def test_the_spr_flow_writes_its_spr_files_to_s3(s3_exports):
    fs = _s3fs()
    spr = [k for k in fs.find(f"{s3_exports}/spr") if k.endswith(".spr")]
    assert spr, "no .spr file in the bucket"
    assert fs.cat_file(spr[0]).decode().startswith("# SPR Compression Result")
