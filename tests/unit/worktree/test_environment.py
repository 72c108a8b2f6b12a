"""A service's environment: secrets redacted where they are shared, real in the `.env`."""

from __future__ import annotations

import stat

import pytest

from tasks.worktree.environment import read_env_file, write_env_file
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
    path = write_env_file(tmp_path, {"API_TOKEN": "t0k3n-value"})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    write_env_file(tmp_path, {"API_TOKEN": "rotated-value"})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


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
