"""Exports to S3 (a SeaweedFS server this script starts on loopback) vs the local disk, in one run.

1. The SPR sample (`samples/spr`, compressed once into its `spr_results` rows) exported in the
   four default formats to a local root and to `s3://…`, alternated `--repeat` times: wall
   time (best and median), bytes written and S3 requests per export. Target: S3 <= 2x local.
2. Delta Lake append latency (one commit per run) on both roots.
3. The spr-pipeline flow on `--docs` documents with its exports (four formats and every
   `.spr` file) on the local disk vs on S3, against a `prefect_test_harness` server (start-up
   not timed, one warm-up run). Target: S3 <= 1.1x local.

    nice .venv/bin/python bench/export_bench.py [--docs 1000] [--repeat 5] [--flow-repeat 1]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

from bench.spr_overhead_bench import corpus, write_docs


def sample_rows() -> list[dict]:
    """The `spr_results` rows of the SPR sample, computed once with the library functions."""
    from tasks.spr import datasets
    from tasks.spr.files import batch_documents
    from tasks.spr.models import SPRRequest
    from tasks.spr.pipeline import analyze_document, assemble, compress_documents

    request = SPRRequest(paths=[Path("samples/spr").resolve()], write_spr_files=False)
    analyzed = [analyze_document(d) for d in batch_documents(request)]
    per_format = [
        compress_documents(analyzed, request.compression_params(f), {}) for f in request.formats
    ]
    return datasets.rows(assemble(analyzed, per_format), "bench", datetime.now(UTC))


class Requests:
    """Counts the HTTP requests the exporter's S3 client sends (botocore's send event)."""

    def __init__(self, root: str) -> None:
        from tasks.storage import open_storage

        fs = open_storage(root).fs
        fs.ls(open_storage(root).bucket)  # connects the client
        self.count = 0
        fs.s3.meta.events.register("before-send.s3", self._seen)

    def _seen(self, **_kwargs) -> None:
        self.count += 1


def timed_exports(rows, roots: dict[str, str | Path], repeat: int, formats, dataset: str):
    from tasks.export import export_dataset
    from tasks.spr.datasets import SPRResultRow

    walls: dict[str, list[float]] = {name: [] for name in roots}
    sizes: dict[str, int] = {}
    for i in range(repeat):  # alternated: load from other processes hits both sides
        for name, root in roots.items():
            started = time.perf_counter()
            result = export_dataset(
                rows, dataset, f"run-{i}-{uuid.uuid4().hex[:6]}", SPRResultRow, formats, root
            )
            walls[name].append(time.perf_counter() - started)
            sizes[name] = sum(f.bytes for f in result.files)
    return walls, sizes


def run_flow(folder: Path, exports: str | Path) -> float:
    from flows.spr_pipeline import spr_pipeline
    from tasks.spr.models import SPRRequest

    os.environ["REACTOR_EXPORTS_DIR"] = str(exports)
    started = time.perf_counter()
    result = asyncio.run(spr_pipeline(SPRRequest(paths=[folder])))
    wall = time.perf_counter() - started
    assert result.export is not None and result.failed == 0
    return wall


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=1000)
    parser.add_argument("--words", type=int, default=250)
    parser.add_argument("--repeat", type=int, default=5, help="sample exports per side")
    parser.add_argument("--flow-repeat", type=int, default=1, help="flow runs per side")
    args = parser.parse_args(argv)

    from tests.objectstore import S3Server

    server = S3Server().start()
    try:
        os.environ.update(server.env())
        bucket = server.fresh_bucket("bench")
        with tempfile.TemporaryDirectory(prefix="export-bench-") as tmp:
            tmp_path = Path(tmp)
            os.environ["REACTOR_COORDINATION_DIR"] = str(tmp_path / "coordination")
            local, remote = tmp_path / "exports", f"s3://{bucket}/exports"
            rows = sample_rows()
            formats = ["json", "jsonl", "csv", "parquet"]
            requests = Requests(remote)
            timed_exports(rows, {"local": local, "s3": remote}, 1, formats, "warmup")
            before = requests.count
            walls, sizes = timed_exports(
                rows, {"local": local, "s3": remote}, args.repeat, formats, "spr_results"
            )
            per_export = (requests.count - before) / args.repeat
            best = {k: min(v) for k, v in walls.items()}
            med = {k: statistics.median(v) for k, v in walls.items()}
            print(f"SPR sample: {len(rows)} rows, formats {','.join(formats)}, {args.repeat} runs")
            for name in ("local", "s3"):
                print(
                    f"  {name:<6} best {best[name] * 1000:7.1f} ms  median "
                    f"{med[name] * 1000:7.1f} ms  {sizes[name]} bytes"
                )
            print(f"  S3 requests per export: {per_export:.0f}")
            print(
                f"  ratio s3/local: best {best['s3'] / best['local']:.2f}, median "
                f"{med['s3'] / med['local']:.2f}  (target <= 2)"
            )

            delta, _ = timed_exports(
                rows, {"local": local, "s3": remote}, args.repeat, ["delta"], "spr_delta"
            )
            print("Delta append (one commit per run):")
            for name in ("local", "s3"):
                print(
                    f"  {name:<6} median {statistics.median(delta[name]) * 1000:7.1f} ms  "
                    f"best {min(delta[name]) * 1000:7.1f} ms"
                )

            from prefect.testing.utilities import prefect_test_harness

            texts = corpus(args.docs, args.words)
            flow: dict[str, list[float]] = {"local": [], "s3": []}
            with prefect_test_harness(server_startup_timeout=300):
                run_flow(write_docs(tmp_path, texts[:5]), remote)  # warm-up
                for _ in range(args.flow_repeat):
                    for name, root in (("local", local), ("s3", remote)):
                        flow[name].append(run_flow(write_docs(tmp_path, texts), root))
            fl, fs3 = min(flow["local"]), min(flow["s3"])
            print(f"spr-pipeline flow, {args.docs} documents, exports + .spr files:")
            print(f"  local  {fl:8.2f} s   runs {', '.join(f'{x:.2f}' for x in flow['local'])}")
            print(f"  s3     {fs3:8.2f} s   runs {', '.join(f'{x:.2f}' for x in flow['s3'])}")
            print(f"  ratio s3/local: {fs3 / fl:.3f}  (target <= 1.1)")
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
