"""Each system step records `reactor.trace.hop.duration` (system, status) and every fallback
`reactor.trace.fallbacks` (system), read back through the OTel SDK's in-memory reader in a
fresh interpreter (the global MeterProvider can be set once per process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

SCRIPT = """
import json
from opentelemetry import metrics
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

reader = InMemoryMetricReader()
metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))

from tasks.telemetry import configure_telemetry, get_tracer
from tasks.trace.calls import execute_system
from tasks.trace.models import CallContext, SystemSpec
from tasks.trace.standins import run_standins
from tasks.tracing import inject_headers
from tests.loopback import free_port

configure_telemetry()
with get_tracer().start_as_current_span("root"):
    carrier = dict(inject_headers())
ctx = CallContext(workflow_id="wf", correlation_id="coord_1", carrier=carrier)
with run_standins() as standins:
    up = SystemSpec(name="up", type="phoenix", url=standins.url("up"))
    execute_system(up, ctx, {})
down = SystemSpec(name="down", url=f"http://127.0.0.1:{free_port()}", retries=0)
execute_system(down, ctx, {})

out = {}
for rm in reader.get_metrics_data().resource_metrics:
    for sm in rm.scope_metrics:
        for m in sm.metrics:
            out[m.name] = [
                [dict(p.attributes), getattr(p, "count", None) or getattr(p, "value", None)]
                for p in m.data.data_points
            ]
print(json.dumps(out))
"""


def test_hop_latency_and_fallbacks_are_recorded(tmp_path):
    env = {**os.environ, "REACTOR_COORDINATION_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    recorded = json.loads(done.stdout.strip().splitlines()[-1])
    hops = sorted((tuple(sorted(a.items())), n) for a, n in recorded["reactor.trace.hop.duration"])
    assert hops == [
        ((("status", "ok"), ("system", "up")), 1),
        ((("status", "simulated"), ("system", "down")), 1),
    ]
    assert recorded["reactor.trace.fallbacks"] == [[{"system": "down"}, 1]]
