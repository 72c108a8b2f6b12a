"""OTLP/HTTP metrics: with OTEL_EXPORTER_OTLP_ENDPOINT set, the project's metrics reach a
collector through the real OTLP exporter (a loopback HTTP sink stands in for the collector)."""

from __future__ import annotations

import os
import subprocess
import sys

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)

from tests.loopback import otlp_collector

SCRIPT = """
import sys
from tasks import metrics
from pydantic import create_model
from tasks.export import export_dataset
from tasks.telemetry import configure_telemetry

configure_telemetry()
metrics.trace_fallbacks.add(3, {"system": "n8n"})
export_dataset([{"n": 1}, {"n": 2}], "otlp_check", "run-1", create_model("Row", n=(int, ...)),
               formats=["parquet"], root=sys.argv[1])
# nothing else: the SDK exports what is left when the process exits
"""


def test_metrics_reach_an_otlp_http_collector(tmp_path):
    with otlp_collector() as (url, received):
        env = {
            **os.environ,
            "OTEL_EXPORTER_OTLP_ENDPOINT": url,
            "REACTOR_COORDINATION_DIR": str(tmp_path / "coordination"),
        }
        env.pop("REACTOR_METRICS_PUSH_URL", None)
        subprocess.run(
            [sys.executable, "-c", SCRIPT, str(tmp_path / "exports")],
            env=env,
            check=True,
            timeout=120,
        )
    points: dict[tuple[str, tuple], float] = {}
    for path, body in received:
        if path != "/v1/metrics":
            continue
        request = ExportMetricsServiceRequest.FromString(body)
        for rm in request.resource_metrics:
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    for p in m.sum.data_points:
                        labels = tuple(sorted((a.key, a.value.string_value) for a in p.attributes))
                        points[(m.name, labels)] = p.as_int
    assert points[("reactor.trace.fallbacks", (("system", "n8n"),))] == 3
    assert points[("reactor.export.rows", (("dataset", "otlp_check"), ("format", "parquet")))] == 2
