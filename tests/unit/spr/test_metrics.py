"""The SPR flow records each (document, format)'s achieved ratio and quality as OTel metrics.
Checked in a fresh interpreter with its own in-memory MeterProvider (the global provider can be
set once per process)."""

import json
import subprocess
import sys

SCRIPT = r"""
import json, pydoc_data.topics
from opentelemetry import metrics
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

reader = InMemoryMetricReader()
metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))

from tasks.spr import story
from tasks.spr.models import SPRDocument, SPRRequest
from tasks.spr.pipeline import analyze_document, assemble, compress_documents

texts = [t for _, t in sorted(pydoc_data.topics.topics.items()) if len(t.split()) > 400][:2]
docs = [analyze_document(SPRDocument(id=f"d{i}", content=t)) for i, t in enumerate(texts)]
request = SPRRequest(content="", formats=["minimal", "standard"])
results = assemble(docs, [compress_documents(docs, request.compression_params(f), {})
                          for f in request.formats])
story.record_metrics(results)
seen = {}
for rm in reader.get_metrics_data().resource_metrics:
    for sm in rm.scope_metrics:
        for m in sm.metrics:
            for p in m.data.data_points:
                seen.setdefault(m.name, []).append([dict(p.attributes), p.count, p.sum])
print(json.dumps(seen))
"""


def test_achieved_ratio_and_quality_are_recorded_per_format_and_content_type():
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True, timeout=120
    )
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    for name in ("reactor.spr.achieved_ratio", "reactor.spr.quality"):
        points = seen[name]
        assert sum(count for _, count, _ in points) == 4  # 2 documents x 2 formats
        assert {a["format"] for a, _, _ in points} == {"minimal", "standard"}
        assert all("content_type" in a for a, _, _ in points)
    ratio_sum = sum(total for _, _, total in seen["reactor.spr.achieved_ratio"])
    assert 2 * (0.08 + 0.15) - 0.12 < ratio_sum < 2 * (0.08 + 0.15) + 0.12
