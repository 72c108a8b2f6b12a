"""The SPR flow records each (document, format)'s achieved ratio and quality as OTel metrics,
by format and content type. Checked in a fresh interpreter with its own in-memory MeterProvider
(the global provider can be set once per process), on results built here with known values:
the interpreter then loads `tasks.spr.story`, not the compressor's NLTK, scikit-learn and Claude
SDK (~7 s of CPU; the compressor's ratios are tested in tests/unit/spr/)."""

import json
import subprocess
import sys

SCRIPT = r"""
import json, sys
from opentelemetry import metrics
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

reader = InMemoryMetricReader()
metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))

from tasks.spr import story
from tasks.spr.models import ContentAnalysis, DocumentResult, FormatResult, QualityReport

def analysis(content_type):
    return ContentAnalysis(word_count=500, content_type=content_type, type_scores={},
                           complexity=0.5, complexity_label="medium", language="en",
                           strategy="balanced")

def result(fmt, ratio, quality):
    return FormatResult(
        format=fmt, requested_ratio=0.5, target_ratio=0.4, achieved_ratio=ratio,
        original_words=500, compressed_words=int(500 * ratio), statements=5,
        quality=QualityReport(quality=quality, keyphrase_recall=0.5, specials_recall=1,
                              semantic_coverage=0.5, rouge1_recall=0.5),
        passed=True, efficiency=quality * (1 - ratio), optimization_steps=[],
        protected_sentences=0, protected_total=0, compressor="extractive", source="extractive",
        fallback_reason=None, compression_ms=1.0, spr_text="s", decompressed="d")

# (document, content type) -> format -> (achieved ratio, quality)
cases = json.loads(sys.argv[1])
results = [DocumentResult(document_id=doc, analysis=analysis(ctype),
                          formats=[result(f, *v) for f, v in formats.items()])
           for doc, ctype, formats in cases]
results.append(DocumentResult(document_id="broken", error="not UTF-8"))  # nothing to record
story.record_metrics(results)
seen = {}
for rm in reader.get_metrics_data().resource_metrics:
    for sm in rm.scope_metrics:
        for m in sm.metrics:
            for p in m.data.data_points:
                seen.setdefault(m.name, []).append([dict(p.attributes), p.count, p.sum])
print(json.dumps(seen))
"""

CASES = [
    ["d0", "documentation", {"minimal": [0.07, 0.75], "standard": [0.14, 0.8]}],
    ["d1", "code", {"minimal": [0.09, 0.7], "standard": [0.16, 0.65]}],
]


def test_achieved_ratio_and_quality_are_recorded_per_format_and_content_type():
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, json.dumps(CASES)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    for name, index in (("reactor.spr.achieved_ratio", 0), ("reactor.spr.quality", 1)):
        got = {(a["format"], a["content_type"]): (count, total) for a, count, total in seen[name]}
        expected = {
            (fmt, ctype): (1, values[index])
            for _, ctype, formats in CASES
            for fmt, values in formats.items()
        }
        assert got == expected, name  # 2 documents x 2 formats, one point each
