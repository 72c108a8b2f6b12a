"""OTLP/HTTP metrics: with OTEL_EXPORTER_OTLP_ENDPOINT set, the project's metrics reach a
collector through the real OTLP exporter (a loopback HTTP sink stands in for the collector)."""

from __future__ import annotations

import http.server
import os
import subprocess
import sys
import threading

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)

SCRIPT = """
import sys
from tasks import metrics
from tasks.export import Column, export_dataset
from tasks.telemetry import configure_telemetry

configure_telemetry()
metrics.claims.add(3, {"outcome": "claimed"})
export_dataset([{"n": 1}, {"n": 2}], "otlp_check", "run-1", {"n": Column.int},
               formats=["parquet"], root=sys.argv[1])
# nothing else: the SDK exports what is left when the process exits
"""


def test_metrics_reach_an_otlp_http_collector(tmp_path):
    received: list[tuple[str, bytes]] = []

    class Collector(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.path, body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {
        **os.environ,
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{server.server_port}",
        "REACTOR_COORDINATION_DIR": str(tmp_path / "coordination"),
    }
    env.pop("REACTOR_METRICS_PUSH_URL", None)
    try:
        subprocess.run(
            [sys.executable, "-c", SCRIPT, str(tmp_path / "exports")],
            env=env,
            check=True,
            timeout=120,
        )
    finally:
        server.shutdown()
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
    assert points[("reactor.claims", (("outcome", "claimed"),))] == 3
    assert points[("reactor.export.rows", (("dataset", "otlp_check"), ("format", "parquet")))] == 2
