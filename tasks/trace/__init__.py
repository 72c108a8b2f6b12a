"""The multi-system trace scenario (flow: `flows/trace_orchestration.py`).

- `models.py`: the request, the trace each step gets a copy of, results and the analysis;
- `context.py`: the root span, correlation id, baggage and tracestate entry;
- `calls.py`: one system step (health, call, retries, labelled fallback) over real HTTP;
- `analysis.py`: latency, hops, critical path and bottlenecks from the spans a run wrote;
- `spans.py`: the span layout and attribute keys;
- `report.py`: the `trace_hops` dataset, artifacts, event payload, coordination-log entry;
- `prefect_tasks.py`: the `@task` wrappers (the only module here that imports Prefect,
  with report.py's artifacts);
- `standins.py`, `sample.py`: loopback stand-ins and the bundled sample.
"""
