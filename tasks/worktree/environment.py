"""A service's environment: what we set, what the user set, and where each is kept.

The process gets the real values. The registry (`environment_registry.json`, shared by every
flow and readable by anyone with the coordination dir) gets them with secret values redacted.
The worktree's `.env` keeps the real values, mode 0600: it is the user's configuration of the
service in their own checkout (`source .env` runs it by hand), and the health monitor restarts
a service from it, so redacting it would break both (docs/worktree.md).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from dotenv import dotenv_values

from tasks.store import atomic_write_bytes
from tasks.worktree.models import ELIXIR_TYPES, DatabaseNames, WorktreeSpec

ENV_FILE = ".env"


def database_names(name: str) -> DatabaseNames:
    base = "".join(c if c.isalnum() else "_" for c in name).lower()
    return DatabaseNames(dev=f"{base}_dev", test=f"{base}_test")


def service_environment(spec: WorktreeSpec, port: int, worktree_path: Path) -> dict[str, str]:
    """What we set for a service: PORT, names, databases, MIX_ENV=dev for Elixir types."""
    databases = database_names(spec.name)
    ours = {
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "WORKTREE_NAME": spec.name,
        "WORKTREE_BRANCH": spec.branch,
        "WORKTREE_PATH": str(worktree_path),
        "OTEL_SERVICE_NAME": spec.name,
        "DATABASE_DEV": databases.dev,
        "DATABASE_TEST": databases.test,
    }
    if spec.type in ELIXIR_TYPES:
        ours["MIX_ENV"] = "dev"
    return ours


def process_env(ours: dict[str, str], user: dict[str, str]) -> dict[str, str]:
    """The child's environment: the parent's, then ours (except a MIX_ENV the parent already
    has: never overwrite it), then the user's `environment_variables`, which always win."""
    env = dict(os.environ)
    for key, value in ours.items():
        if key == "MIX_ENV" and key in env:
            continue
        env[key] = value
    env.update(user)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def write_env_file(worktree: Path, values: dict[str, str]) -> Path:
    """`<worktree>/.env`, one KEY=value per line (double-quoted with `\\` escapes when a value
    needs it, as python-dotenv reads it back), readable by its owner only: it holds secrets."""
    lines = []
    for key, value in values.items():
        needs_quotes = any(c.isspace() or c in "\"'#$`\\" for c in value)
        shown = (
            '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"' if needs_quotes else value
        )
        lines.append(f"{key}={shown}\n")
    target = worktree / ENV_FILE
    # created 0600 before the atomic write, so a replace that keeps the file's mode keeps this
    with contextlib.suppress(FileExistsError):
        os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    atomic_write_bytes(target, "".join(lines).encode())
    os.chmod(target, 0o600)
    return target


def read_env_file(worktree: Path) -> dict[str, str]:
    """The worktree's `.env` as written above (or as the user edited it); missing: empty."""
    path = worktree / ENV_FILE
    if not path.is_file():
        return {}
    return {k: v for k, v in dotenv_values(path, interpolate=False).items() if v is not None}
