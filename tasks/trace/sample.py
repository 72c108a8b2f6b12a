"""The bundled sample and how it meets the stand-ins.

`samples/trace/systems.json` points at the stand-ins' default address (127.0.0.1:8790, what
`reactor trace standins` binds). When the stand-ins run on another port (tests, the demo, the
`--standins` CLI option pick a free one), `rebase_urls` moves every URL on that default address
to the actual one; URLs elsewhere are left alone.
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tasks.trace.models import TraceRequest
from tasks.trace.standins import DEFAULT_PORT, StandinConfig, run_standins

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "trace"
SAMPLE_SYSTEMS = SAMPLES / "systems.json"
SAMPLE_STANDINS = SAMPLES / "standins.json"
DEFAULT_BASE = f"http://127.0.0.1:{DEFAULT_PORT}"


def rebase_urls(
    request: TraceRequest, base_url: str, default_base: str = DEFAULT_BASE
) -> TraceRequest:
    """`request` with every system URL on `default_base` moved to `base_url`."""
    old, new = httpx.URL(default_base), httpx.URL(base_url)
    systems = []
    for s in request.systems:
        url = httpx.URL(s.url)
        if (url.host, url.port) == (old.host, old.port):
            url = url.copy_with(scheme=new.scheme, host=new.host, port=new.port)
        systems.append(s.model_copy(update={"url": str(url).rstrip("/")}))
    return request.model_copy(update={"systems": systems})


def sample_trace_request() -> TraceRequest:
    return TraceRequest.model_validate_json(SAMPLE_SYSTEMS.read_text(encoding="utf-8"))


def sample_standin_config() -> StandinConfig:
    return StandinConfig.model_validate(json.loads(SAMPLE_STANDINS.read_text(encoding="utf-8")))


def run_with_standins(
    flow_fn: Callable[[TraceRequest], Any],
    systems: Path | TraceRequest = SAMPLE_SYSTEMS,
    config: StandinConfig | None = None,
) -> Any:
    """Start stand-ins on a free port, rebase `systems` onto them and run `flow_fn` (a sync
    function or an async flow, run to completion here)."""
    request = (
        systems
        if isinstance(systems, TraceRequest)
        else TraceRequest.model_validate_json(Path(systems).read_text(encoding="utf-8"))
    )
    with run_standins(config or sample_standin_config()) as standins:
        outcome = flow_fn(rebase_urls(request, standins.base_url))
        return asyncio.run(outcome) if inspect.isawaitable(outcome) else outcome
