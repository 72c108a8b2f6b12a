"""telemetry_spans.jsonl: rotated by size instead of growing for ever, and one run's spans read
from the end of the log without reading what earlier runs wrote."""

from __future__ import annotations

import json
import time

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from tasks.jsonl import iter_lines_backwards
from tasks.logrotate import rotated
from tasks.span_log import JsonlSpanExporter, read_spans


def _write_spans(exporter: JsonlSpanExporter, n: int, name: str = "work") -> None:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    for i in range(n):
        with tracer.start_as_current_span(f"{name}-{i}"):
            pass
    provider.shutdown()


def _record(name: str, ended_ns: int) -> str:
    at = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ended_ns / 1e9)) + ".000000+00:00"
    return json.dumps(
        {"trace_id": "0" * 31 + "1", "operation_name": name, "start_time": at, "end_time": at}
    )


def test_the_span_log_rotates_by_size_keeping_its_backups(tmp_path):
    path = tmp_path / "telemetry_spans.jsonl"
    exporter = JsonlSpanExporter(path, max_bytes=8192, backups=2)
    _write_spans(exporter, 200)
    assert path.stat().st_size <= 8192
    assert rotated(path, 1).stat().st_size <= 8192 and rotated(path, 2).exists()
    assert not rotated(path, 3).exists()  # the oldest generation was dropped
    names = [r["operation_name"] for r in read_spans(path)]
    assert names[-1] == "work-199" and names == sorted(names, key=lambda n: int(n[5:]))
    assert 0 < len(names) < 200


def test_one_runs_spans_are_read_from_the_end_of_the_log(tmp_path):
    """The old part of the log holds a line that does not parse: a reader that read the whole
    file would raise on it; reading this run's spans stops long before it."""
    path = tmp_path / "telemetry_spans.jsonl"
    hour_ago = time.time_ns() - 3600 * 10**9
    old = [_record(f"old-{i}", hour_ago) for i in range(20_000)]
    path.write_text("not json\n" + "\n".join(old) + "\n")
    run_started = time.time_ns()
    _write_spans(JsonlSpanExporter(path), 3, name="this-run")
    spans = read_spans(path, since_ns=run_started)
    assert [s["operation_name"] for s in spans] == ["this-run-0", "this-run-1", "this-run-2"]


def test_a_run_straddling_a_rotation_is_read_whole(tmp_path):
    path = tmp_path / "telemetry_spans.jsonl"
    run_started = time.time_ns()
    _write_spans(JsonlSpanExporter(path, max_bytes=4096, backups=3), 12)
    assert rotated(path, 1).exists()
    assert len(read_spans(path, since_ns=run_started)) == 12


def test_lines_read_backwards_across_block_boundaries(tmp_path):
    path = tmp_path / "log.jsonl"
    lines = [f"line {i} " + "x" * (i % 37) for i in range(500)]
    path.write_text("\n".join(lines) + "\n\n")
    back = [line.decode() for line in iter_lines_backwards(path, block=64)]
    assert back == lines[::-1]
