"""Two hosts, one bucket: datasets and task results on the shared S3 server (the session's
SeaweedFS), so that a run killed on host A is finished on host B.

Each host has its own coordination dir (its own disk); they share the Prefect server, the
exports root `s3://<bucket>/exports` and the result storage block `deployments/storage.py`
saves (`REACTOR_RESULT_STORAGE=s3-bucket/…`, results under `s3://<bucket>/results`). Host A's
SPR run is SIGKILLed once some of its chunks' results are in the bucket; host B, a separate
process that never saw A's disk, resumes the same flow run and loads those results instead of
compressing the chunks again. Both hosts' exports end up in one dataset.
"""

from __future__ import annotations

import os
from collections import Counter

import pandas as pd
import pytest
import s3fs
from pydantic import BaseModel

from deployments.storage import save_result_storage
from tasks.export import export_dataset
from tasks.settings import Settings
from tasks.span_log import read_spans, spans_path
from tasks.spr.models import SPRRequest
from tests.crash import resume_elsewhere, run_and_kill, state_of
from tests.flows.test_spr_pipeline import _docs

# the kill test took up to 85 s beside 4 CPU hogs (tests/stress/kill_tests.py): a wide bound
pytestmark = [pytest.mark.timeout(900), pytest.mark.slow]

ENTRY = "flows.spr_pipeline:spr_pipeline"
DOCS = 4


def _compressions(coordination_dir) -> Counter:
    spans = read_spans(spans_path(Settings(coordination_dir=coordination_dir)))
    return Counter(
        s["span_attributes"]["spr.chunk"]
        for s in spans
        if s["operation_name"] == "spr.compress_chunk"
    )


@pytest.fixture
def shared_bucket(s3_server, monkeypatch) -> str:
    bucket = s3_server.fresh_bucket("hosts")
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("REACTOR_EXPORTS_DIR", f"s3://{bucket}/exports")
    return bucket


class HostRow(BaseModel):
    host: str
    n: int


def test_both_hosts_export_into_one_dataset_in_the_bucket(shared_bucket, tmp_path, monkeypatch):
    for host in ("host-a", "host-b"):
        monkeypatch.setenv("REACTOR_COORDINATION_DIR", str(tmp_path / host))
        rows = [{"host": host, "n": i} for i in range(3)]
        export_dataset(rows, "hosts", f"run-{host}", HostRow, root=Settings().exports_dir)
    frame = pd.read_parquet(f"s3://{shared_bucket}/exports/parquet/hosts")
    assert sorted(frame["host"].unique()) == ["host-a", "host-b"]
    assert len(frame) == 6


def test_a_run_killed_on_host_a_resumes_on_host_b_from_the_bucket(
    shared_bucket, tmp_path, monkeypatch
):
    slug = save_result_storage(f"s3://{shared_bucket}/results", f"results-{shared_bucket}")
    monkeypatch.setenv("REACTOR_RESULT_STORAGE", slug)
    host_a, host_b = tmp_path / "host-a", tmp_path / "host-b"
    fs = s3fs.S3FileSystem(skip_instance_cache=True)

    def persisted() -> int:
        fs.invalidate_cache()
        found = fs.find(f"{shared_bucket}/results", detail=True)
        return sum(1 for info in found.values() if info["type"] == "file")

    def kill_point() -> bool:
        """One chunk's result in the bucket beside the analyses and the loaded ratios (the run
        is frozen while the bucket is listed, so it cannot pass this point during a listing)."""
        return persisted() >= DOCS + 2

    request = SPRRequest(
        documents=_docs(DOCS, words=300),
        formats=["standard"],
        chunk_size=1,
        export_formats=["parquet"],
    )
    monkeypatch.setenv("REACTOR_COORDINATION_DIR", str(host_a))
    # the analyses (one per document) and the loaded ratios come first, then one per chunk
    killed = run_and_kill(
        ENTRY, {"request": request.model_dump(mode="json")}, kill_point, freeze=True
    )
    on_a = _compressions(host_a)
    assert not (host_a / "results").exists(), "host A kept its results on its own disk"

    monkeypatch.setenv("REACTOR_COORDINATION_DIR", str(host_b))
    assert resume_elsewhere(killed.flow_run_id, ENTRY) == 0
    assert state_of(killed.flow_run_id) == "Completed"

    on_b = _compressions(host_b)
    chunks = {f"docs-{i}-{i}" for i in range(1, DOCS + 1)}
    assert set(on_a) | set(on_b) == chunks
    assert sum(on_b.values()) < DOCS, f"host B compressed every chunk again: {on_b}"
    frame = pd.read_parquet(f"s3://{shared_bucket}/exports/parquet/spr_results")
    assert len(frame) == DOCS and set(frame["run_id"]) == {str(killed.flow_run_id)}
    assert os.environ["AWS_SECRET_ACCESS_KEY"] not in str(fs.cat_file(fs.find(
        f"{shared_bucket}/exports/_manifests")[0]))  # fmt: skip
