"""The multi-system trace scenario (flow: `flows/trace_orchestration.py`).

- `models.py`: the request, the trace each step gets a copy of, results and the analysis;
- `context.py`: the root span, correlation id, baggage and tracestate entry;
- `calls.py`: one system step (health, call, retries, labelled fallback) over real HTTP;
- `analysis.py`: latency, hops, critical path and bottlenecks from the spans a run wrote;
- `spans.py`: the span layout and attribute keys;
- `datasets.py`: the `trace_hops` dataset (its row model and rows);
- `results.py`: the execution path, the event payload, the coordination-log entry;
- `publish.py`: the artifacts and the progress bar (imports Prefect: an edge module);
- `prefect_tasks.py`: the `@task` wrappers (the other module here that imports Prefect);
- `standins.py`, `sample.py`: loopback stand-ins and the bundled sample.
"""
