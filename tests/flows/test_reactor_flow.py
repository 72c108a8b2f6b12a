"""`reactor_flow`, the decorator every flow of flows/ is made with: each run records its
flow-run span under that run's own settings, and parameters are checked before the body runs."""

from __future__ import annotations

import asyncio

import pytest
from opentelemetry import trace
from prefect.exceptions import ParameterTypeError

from tasks.runtime import reactor_flow
from tasks.settings import get_settings
from tasks.span_log import read_spans, spans_path
from tasks.tracing import format_trace_id


@reactor_flow("reactor-flow-probe")
async def probe(count: int) -> str:
    """The trace id of the span current in the body: Prefect's flow-run span."""
    return format_trace_id(trace.get_current_span().get_span_context().trace_id)


def test_each_run_records_its_flow_run_span_in_its_own_coordination_dir(tmp_path, monkeypatch):
    for name in ("first", "second"):  # one process, as the CLI's tests and a served flow are
        monkeypatch.setenv("REACTOR_COORDINATION_DIR", str(tmp_path / name))
        state = asyncio.run(probe(1, return_state=True))
        trace_id = state.result()
        spans = read_spans(spans_path(get_settings()), trace_id)
        flow_runs = [s for s in spans if s["span_attributes"].get("prefect.run.type") == "flow"]
        assert [s["span_attributes"]["prefect.run.id"] for s in flow_runs] == [
            str(state.state_details.flow_run_id)
        ], name


def test_a_parameter_of_the_wrong_type_is_refused_before_the_body_runs(reactor_env):
    with pytest.raises(ParameterTypeError, match="count"):
        asyncio.run(probe("many"))  # type: ignore[arg-type]
