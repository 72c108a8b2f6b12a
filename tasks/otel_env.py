"""What every OpenTelemetry setup of a process shares (traces in `tasks/telemetry.py`, metrics
in `tasks/metrics_setup.py`): the resource that names this process and its package version,
and whether OTLP/HTTP export to a collector is configured."""

from __future__ import annotations

import os
from importlib.metadata import PackageNotFoundError, version
from typing import Literal

from opentelemetry.sdk.resources import Resource

from tasks.settings import Settings

try:
    VERSION = version("reactor-flows")
except PackageNotFoundError:  # running from a source tree that is not installed
    VERSION = "0.0.0"


def process_resource(settings: Settings, **attributes: str) -> Resource:
    """The OTel resource of this process: `service.name` from settings, `service.version` of the
    package, plus `attributes`."""
    return Resource.create(
        {"service.name": settings.service_name, "service.version": VERSION, **attributes}
    )


def otlp_configured(signal: Literal["traces", "metrics"]) -> bool:
    """Whether the OTLP exporter has an endpoint for `signal`: the shared
    `OTEL_EXPORTER_OTLP_ENDPOINT` or the signal's own (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`…)."""
    return bool(
        os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or os.environ.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT")
    )
