"""Orchestration overhead of the SPR flow: the flow on N documents vs calling the library
functions directly on the same documents, in one run, plus the peak memory of the process.

Both sides do the same work: read + analyze each file, compress into every format with the
roundtrip quality loop, learn ratio adjustments, export the dataset in four formats. The flow
runs against a `prefect_test_harness` server started by this script (its start-up is not
timed; a 5-document warm-up flow run is made first, as a long-lived worker would have).
Each run gets fresh documents (a per-run tag), so the flow's cross-run cache never answers.
The two sides alternate `--repeat` times and the best time of each is kept (the machine is
shared, so a single pair of runs is at the mercy of other processes).

    .venv/bin/python bench/spr_overhead_bench.py [--docs 1000] [--words 250] [--repeat 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")


def corpus(n: int, words: int) -> list[str]:
    """`n` real text windows of `words` words from the Python reference topics."""
    import pydoc_data.topics

    texts = [t.split() for _, t in sorted(pydoc_data.topics.topics.items())]
    windows = []
    for tokens in texts:
        for start in range(0, max(1, len(tokens) - words // 2), words // 2):
            if len(tokens[start : start + words]) >= words // 2:
                windows.append(" ".join(tokens[start : start + words]))
    return [windows[i % len(windows)] for i in range(n)]


def write_docs(root: Path, texts: list[str]) -> Path:
    tag = uuid.uuid4().hex[:8]
    folder = root / f"docs-{tag}"
    folder.mkdir()
    for i, text in enumerate(texts):
        (folder / f"doc-{i:04d}.txt").write_text(f"Batch {tag} document {i}. {text}")
    return folder


def direct(folder: Path, exports: Path) -> float:
    """The library functions, called in a plain loop."""
    from tasks.export import export_dataset
    from tasks.spr import datasets
    from tasks.spr.files import batch_documents
    from tasks.spr.learning import learn_adjustments
    from tasks.spr.models import SPRRequest
    from tasks.spr.pipeline import analyze_document, assemble, compress_documents

    started = time.perf_counter()
    request = SPRRequest(paths=[folder], write_spr_files=False)
    analyzed = [analyze_document(d) for d in batch_documents(request)]
    per_format = [
        compress_documents(analyzed, request.compression_params(f), {}) for f in request.formats
    ]
    results = assemble(analyzed, per_format)
    learn_adjustments({}, results, request.optimization_step, request.quality_threshold)
    rows = datasets.rows(results, "direct", datetime.now(UTC))
    export_dataset(
        rows, datasets.DATASET, f"direct-{folder.name}", datasets.SPRResultRow, root=exports
    )
    return time.perf_counter() - started


def run_flow(folder: Path) -> tuple[float, int]:
    from flows.spr_pipeline import spr_pipeline
    from tasks.spr.models import SPRRequest

    started = time.perf_counter()
    result = asyncio.run(spr_pipeline(SPRRequest(paths=[folder], write_spr_files=False)))
    return time.perf_counter() - started, result.processed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=1000)
    parser.add_argument("--words", type=int, default=250)
    parser.add_argument("--repeat", type=int, default=2, help="interleaved rounds; best kept")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="spr-overhead-") as tmp:
        root = Path(tmp)
        os.environ["REACTOR_COORDINATION_DIR"] = str(root / "coordination")
        os.environ["REACTOR_EXPORTS_DIR"] = str(root / "exports")
        texts = corpus(args.docs, args.words)
        from prefect.testing.utilities import prefect_test_harness

        direct_runs, flow_runs = [], []
        with prefect_test_harness(server_startup_timeout=120):
            run_flow(write_docs(root, texts[:5]))  # warm-up
            for _ in range(args.repeat):  # interleaved: load from other processes hits both
                direct_runs.append(direct(write_docs(root, texts), root / "exports"))
                flow_s, processed = run_flow(write_docs(root, texts))
                flow_runs.append(flow_s)
        direct_s, flow_s = min(direct_runs), min(flow_runs)
        peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    assert processed == args.docs, f"flow processed {processed} of {args.docs}"
    print(f"documents: {args.docs} x ~{args.words} words, formats minimal+standard+extended")
    runs = lambda xs: ", ".join(f"{x:.2f}" for x in xs)  # noqa: E731
    print(
        f"direct library calls : {direct_s:8.2f} s  ({args.docs / direct_s:7.1f} docs/s)"
        f"  runs: {runs(direct_runs)}"
    )
    print(
        f"spr-pipeline flow    : {flow_s:8.2f} s  ({args.docs / flow_s:7.1f} docs/s)"
        f"  runs: {runs(flow_runs)}"
    )
    print(f"overhead ratio flow/direct: {flow_s / direct_s:.3f}  (target <= 1.3)")
    print(f"peak RSS of this process (flow client): {peak_mib:.0f} MiB  (target <= 1024 MiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
