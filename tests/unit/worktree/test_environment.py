"""A service's environment: the process gets the real values, no file ever holds a secret."""

from __future__ import annotations

import stat

import pytest

from tasks.worktree.environment import read_env_file, restart_environment, write_env_file
from tasks.worktree.secret_names import is_secret_name, redacted

TRICKY = {
    "PORT": "4100",
    "SPACES": "a b  c",
    "QUOTES": "say \"hi\" and 'bye'",
    "BACKSLASH": r"C:\new\table",
    "DOLLAR": "$HOME ${PATH} `id`",
    "HASH": "value # not a comment",
    "EMPTY": "",
    "MULTI": "line one\nline two",
}


def test_env_file_reads_back_exactly_what_was_written(tmp_path):
    write_env_file(tmp_path, TRICKY)
    assert read_env_file(tmp_path) == TRICKY


def test_env_file_is_readable_by_its_owner_only(tmp_path):
    path = write_env_file(tmp_path, {"MODE": "dev"})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    write_env_file(tmp_path, {"MODE": "prod"})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_env_file_names_secrets_without_their_values(tmp_path, monkeypatch):
    monkeypatch.setenv("SERVICE_API_SECRET", "known-s3cret-value")
    values = {"API_TOKEN": "t0k3n-value", "UPSTREAM": "known-s3cret-value", "MODE": "dev"}
    text = write_env_file(tmp_path, values).read_text()
    assert "t0k3n-value" not in text and "known-s3cret-value" not in text
    assert "# API_TOKEN: a secret, not stored" in text
    assert "# UPSTREAM: a secret, not stored" in text  # its value is a known secret
    assert read_env_file(tmp_path) == {"MODE": "dev"}


def test_restart_takes_secrets_from_its_own_environment(tmp_path, monkeypatch):
    write_env_file(tmp_path, {"MODE": "dev", "API_TOKEN": "t0k3n-value"})
    recorded = {"MODE": "dev", "API_TOKEN": "[REDACTED]"}
    monkeypatch.delenv("API_TOKEN", raising=False)
    env, why = restart_environment(recorded, tmp_path)
    assert env is None and "API_TOKEN is not stored anywhere" in why
    monkeypatch.setenv("API_TOKEN", "t0k3n-value")
    env, why = restart_environment(recorded, tmp_path)
    assert env is not None and env["API_TOKEN"] == "t0k3n-value" and env["MODE"] == "dev"


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("API_SECRET", True),
        ("GITHUB_TOKEN", True),
        ("DB_PASSWORD", True),
        ("STRIPE_KEY", True),
        ("KEY", True),
        ("ANTHROPIC_API_KEY", True),
        ("PORT", False),
        ("KEYBOARD_LAYOUT", False),
        ("MONKEY", False),
    ],
)
def test_secret_names(name, secret):
    assert is_secret_name(name) is secret


def test_redacted_replaces_only_secret_values():
    env = {"API_SECRET": "s3cr3t", "PORT": "4100", "EMPTY_TOKEN": ""}
    assert redacted(env) == {"API_SECRET": "[REDACTED]", "PORT": "4100", "EMPTY_TOKEN": ""}
