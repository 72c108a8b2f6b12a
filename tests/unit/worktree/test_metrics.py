"""What the worktree flows record in the project's metrics: health checks by verdict,
restarts by outcome, time to healthy (read back from an in-memory OTel reader in a fresh
interpreter, so the global MeterProvider of the test session is left alone)."""

from __future__ import annotations

import json
import subprocess
import sys

SCRIPT = """
import json, logging
from opentelemetry import metrics
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

reader = InMemoryMetricReader()
metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))

from tasks.worktree import story
from tasks.worktree.models import MonitorCheck, ServiceOutcome

log = logging.getLogger("test")
# a deployment: healthy at the third probe, 1.5 s after its start
story.log_service(log, ServiceOutcome(
    name="api", status="healthy", port=4100, health_checks=3, time_to_healthy_ms=1500.0))
# a monitor pass that restarted it, and one that found it busy (not a health check)
for action in ("restarted", "busy"):
    story.log_check(log, MonitorCheck(
        name="api", healthy=False, process_alive=False, consecutive_failures=0, action=action))

out = {}
for rm in reader.get_metrics_data().resource_metrics:
    for sm in rm.scope_metrics:
        for m in sm.metrics:
            for p in m.data.data_points:
                key = m.name + " " + json.dumps(dict(p.attributes), sort_keys=True)
                out[key] = getattr(p, "value", None) if hasattr(p, "value") else [p.count, p.sum]
print(json.dumps(out))
"""


def test_health_checks_restarts_and_time_to_healthy_are_recorded():
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True
    )
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got['reactor.health.checks {"healthy": "false", "service": "api"}'] == 3
    assert got['reactor.health.checks {"healthy": "true", "service": "api"}'] == 1
    assert got['reactor.service.restarts {"outcome": "restarted", "service": "api"}'] == 1
    assert got['reactor.deploy.time_to_healthy {"service": "api"}'] == [1, 1.5]
