"""A service's environment: what we set, what the user set, and where each is kept.

The process gets the real values. No secret value is ever persisted: the registry
(`environment_registry.json`) keeps a secret as `[REDACTED]`, and the worktree's `.env` (the
service's configuration in the user's checkout, `set -a; . ./.env` runs it by hand) names it in
a comment without its value. A secret is a variable whose name says so (`secret_names`) or whose
value is a known secret (`tasks.redaction`). A restart takes each secret from the environment
of the process that restarts the service (`restart_environment`; docs/worktree.md).

Nothing else of the deploying process reaches a service: it gets a small base environment
(`BASE_VARS`: PATH, HOME, locale, the toolchains' home directories), the variables we set, the
ones its spec passes through by name (`passthrough_env`) and its own `environment_variables`.
The coordination layer's database URL, API keys and webhook never do unless named.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from dotenv import dotenv_values

from tasks.redaction import REDACTED, known_secrets
from tasks.store import atomic_write_bytes
from tasks.worktree.models import ELIXIR_TYPES, DatabaseNames, WorktreeSpec
from tasks.worktree.secret_names import is_secret_name, secret_values

ENV_FILE = ".env"
SECRET_NOTE = "a secret, not stored; export it in the environment that runs or restarts this"


def database_names(name: str) -> DatabaseNames:
    base = "".join(c if c.isalnum() else "_" for c in name).lower()
    return DatabaseNames(dev=f"{base}_dev", test=f"{base}_test")


# What a toolchain needs to find itself and the user's caches; none of it is a secret. A
# proxy variable may carry credentials (http://user:pass@proxy): pass it through by name.
BASE_VARS = frozenset({
    "PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "TZ", "TMPDIR", "TERM",
    "SSL_CERT_FILE", "SSL_CERT_DIR",
    "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_RUNTIME_DIR",
    "MIX_HOME", "HEX_HOME", "MIX_ARCHIVES", "ERL_AFLAGS", "ERL_LIBS", "ELIXIR_ERL_OPTIONS",
    "ASDF_DIR", "ASDF_DATA_DIR", "MISE_DATA_DIR", "NVM_DIR", "VIRTUAL_ENV",
    "CARGO_HOME", "RUSTUP_HOME", "GOPATH", "GOROOT", "JAVA_HOME",
})  # fmt: skip
BASE_PREFIXES = ("LC_",)


def base_environment() -> dict[str, str]:
    """The part of this process's environment every service gets (`BASE_VARS`, `LC_*`)."""
    return {
        k: v
        for k, v in os.environ.items()
        if (k in BASE_VARS or k.startswith(BASE_PREFIXES)) and not is_secret_name(k)
    }


def service_environment(spec: WorktreeSpec, port: int, worktree_path: Path) -> dict[str, str]:
    """What we set for a service: PORT, names, databases, MIX_ENV for Elixir types (the
    deploying process's MIX_ENV when it has one, else dev: recorded as the service got it, so a
    restart brings it back in the same environment)."""
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
        ours["MIX_ENV"] = os.environ.get("MIX_ENV") or "dev"
    return ours


def declared_environment(spec: WorktreeSpec, port: int, worktree_path: Path) -> dict[str, str]:
    """Everything a service gets beyond the base environment, as the registry records it and
    the `.env` names it: ours, then the variables passed through from this process (those it
    has), then the user's `environment_variables`, which always win."""
    passed = {k: os.environ[k] for k in spec.passthrough_env if k in os.environ}
    ours = service_environment(spec, port, worktree_path)
    return {**ours, **passed, **spec.environment_variables}


def process_env(ours: dict[str, str], user: dict[str, str]) -> dict[str, str]:
    """The child's environment: the base environment, then ours, then the user's variables,
    which always win. Nothing else of this process's environment."""
    env = {**base_environment(), **ours, **user}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def secrets_held(env: dict[str, str]) -> list[str]:
    """The secret values a process with environment `env` holds: its secret-named variables'
    and every known secret one of its values contains (a URL with a password in it)."""
    found = set(secret_values(env))
    found.update(s for s in known_secrets() if any(s in v for v in env.values()))
    return sorted(found, key=len, reverse=True)


def withheld(values: dict[str, str]) -> list[str]:
    """The names whose values are secrets: never written to a file."""
    known = known_secrets()
    return [k for k, v in values.items() if v and (is_secret_name(k) or any(s in v for s in known))]


def write_env_file(worktree: Path, values: dict[str, str]) -> Path:
    """`<worktree>/.env`, one KEY=value per line (double-quoted with `\\` escapes when a value
    needs it, as python-dotenv reads it back), readable by its owner only. A secret is written
    as a comment naming it, never its value."""
    lines = []
    secret = set(withheld(values))
    for key, value in values.items():
        if key in secret:
            lines.append(f"# {key}: {SECRET_NOTE}\n")
            continue
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


def restart_environment(
    recorded: dict[str, str], worktree: Path
) -> tuple[dict[str, str] | None, str]:
    """The environment to restart a service with: what the registry recorded, completed from
    the worktree's `.env` (the user may have edited it), each withheld secret (`[REDACTED]`
    there) taken from this process's environment. (None, why) when a secret is not in it: a
    service restarted with `[REDACTED]` for its key would be wrong."""
    values = {**recorded, **read_env_file(worktree)}
    secrets = sorted(k for k, v in values.items() if v == REDACTED)
    missing = [k for k in secrets if not os.environ.get(k)]
    if missing:
        return None, (
            f"cannot restart: the secret {', '.join(missing)} is not stored anywhere; set it "
            "in the environment of the process that restarts (the health monitor's worker, "
            "or the shell running `reactor`)"
        )
    values.update({k: os.environ[k] for k in secrets})
    return process_env({}, values), ""


def read_env_file(worktree: Path) -> dict[str, str]:
    """The worktree's `.env` as written above (or as the user edited it); missing: empty."""
    path = worktree / ENV_FILE
    if not path.is_file():
        return {}
    return {k: v for k, v in dotenv_values(path, interpolate=False).items() if v is not None}
