"""Settings: one pydantic-settings model, env prefix `REACTOR_`; defaults work unconfigured."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="REACTOR_", extra="ignore")

    coordination_dir: Path = Path("coordination")
    exports_dir: Path = Path("exports")
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

    @property
    def claude_configured(self) -> bool:
        return self.anthropic_api_key is not None and bool(
            self.anthropic_api_key.get_secret_value()
        )

    def secret_values(self) -> list[str]:
        """Configured secret values, for redaction."""
        key = self.anthropic_api_key
        return [key.get_secret_value()] if key and key.get_secret_value() else []


def get_settings() -> Settings:
    """Fresh settings from the environment (cheap; lets tests and CLIs override per call)."""
    return Settings()
