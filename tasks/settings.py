"""Settings: one pydantic-settings model, env prefix `REACTOR_`; defaults work unconfigured."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="REACTOR_", extra="ignore")

    coordination_dir: Path = Path("coordination")
    # the datasets' storage root: a path, file://…, or s3://bucket/prefix (tasks/storage.py);
    # a local root is a Path, an object store's a URI string
    exports_dir: Path | str = Path("exports")
    service_name: str = "reactor-flows"

    anthropic_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("REACTOR_ANTHROPIC_API_KEY", "ANTHROPIC_API_KEY"),
    )
    anthropic_model: str = "claude-sonnet-4-5"
    llm_timeout_s: float = Field(default=30.0, gt=0)
    llm_max_retries: int = Field(default=2, ge=0)

    http_timeout_s: float = Field(default=10.0, gt=0)  # the event broadcast POST
    lock_timeout_s: float = Field(default=10.0, gt=0)
    lock_tries: int = Field(default=5, ge=1)

    task_runner: Literal["threads", "dask"] = "threads"
    max_workers: int = Field(default=4, ge=1, le=64)
    dask_address: str | None = None

    broadcast_url: str | None = None  # optional HTTP sink for events (e.g. a Phoenix endpoint)

    # telemetry_spans.jsonl is rotated (`.1` … `.<backups>`) once it would pass this size, so
    # it never grows for ever; readers of one run's spans read only the newest lines.
    spans_max_bytes: int = Field(default=32 * 1024 * 1024, ge=4096)
    spans_backups: int = Field(default=3, ge=1)

    # Shared coordination state for several hosts (claim ledger, coordination log, agent
    # registry): `postgresql://user:pass@host:port/db`. Unset = the embedded SQLite/JSON default.
    database_url: SecretStr | None = None
    # Prometheus scrape endpoint of the long-lived processes (serve, workers, health monitor);
    # unset = none. Bound to `metrics_host` (loopback by default).
    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    metrics_host: str = "127.0.0.1"
    # Where the Prefect automations send their notifications (a webhook block is made from it).
    alert_webhook_url: SecretStr | None = None

    @field_validator("exports_dir", mode="before")
    @classmethod
    def _storage_root(cls, value: object) -> object:
        from tasks.storage import as_root

        return as_root(value) if isinstance(value, str | Path) else value

    @property
    def claude_configured(self) -> bool:
        return self.anthropic_api_key is not None and bool(
            self.anthropic_api_key.get_secret_value()
        )

    @property
    def database_dsn(self) -> str | None:
        """The PostgreSQL URL in clear, for the driver only (never log it)."""
        return self.database_url.get_secret_value() if self.database_url else None

    def secret_values(self) -> list[str]:
        """Configured secret values, for redaction (the API key, the database password and
        the whole database URL, the alert webhook URL)."""
        values: list[str] = []
        for secret in (self.anthropic_api_key, self.alert_webhook_url):
            if secret is not None and secret.get_secret_value():
                values.append(secret.get_secret_value())
        if self.database_dsn:
            values.append(self.database_dsn)
            password = urlsplit(self.database_dsn).password
            if password:
                values.append(password)
        return values


_built: tuple[int, Settings] | None = None


def get_settings() -> Settings:
    """The settings of the environment as it is now (tests and CLIs override it per call).
    Built again only when the environment changed: building costs ~1.2 ms, the environment's
    fingerprint ~20 us, and a worktree deploy reads them on every registry open and event
    (py-spy of bench/worktree_bench.py). A copy, so that a caller's change stays its own."""
    global _built
    key = hash(frozenset(os.environ.items()))
    built = _built
    if built is None or built[0] != key:
        built = _built = (key, Settings())
    return built[1].model_copy()
