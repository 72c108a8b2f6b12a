from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from tasks.redaction import (
    REDACTED,
    RedactingFilter,
    dumps_redacted,
    known_secrets,
    redact,
    url_password,
    without_credentials,
)


def test_configured_secret_is_redacted_everywhere_it_appears(monkeypatch):
    monkeypatch.setenv("REACTOR_ANTHROPIC_API_KEY", "sk-ant-test-0123456789")
    value = {
        "prompt": "key sk-ant-test-0123456789 leaked",
        "n": 3,
        "list": ["sk-ant-test-0123456789"],
    }
    assert redact(value) == {"prompt": f"key {REDACTED} leaked", "n": 3, "list": [REDACTED]}


def test_sensitive_key_names_are_redacted_whatever_the_value():
    clean = redact({"Authorization": "Bearer abc", "x-api-key": "k", "path": "/health"}, [])
    assert clean == {"Authorization": REDACTED, "x-api-key": REDACTED, "path": "/health"}


def test_env_vars_named_like_secrets_are_redacted(monkeypatch):
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_abcdefgh12345678")
    assert redact("token=ghp_abcdefgh12345678") == f"token={REDACTED}"


def test_log_records_are_redacted(monkeypatch):
    monkeypatch.setenv("REACTOR_ANTHROPIC_API_KEY", "sk-ant-log-0123456789")
    record = logging.LogRecord(
        "x", logging.INFO, __file__, 1, "using %s", ("sk-ant-log-0123456789",), None
    )
    RedactingFilter().filter(record)
    assert record.getMessage() == f"using {REDACTED}"


def test_exception_tracebacks_and_stacks_in_logs_are_redacted(monkeypatch):
    import io

    monkeypatch.setenv("REACTOR_ANTHROPIC_API_KEY", "sk-ant-trace-0123456789")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger("reactor.test.redaction")
    logger.addHandler(handler)
    try:
        try:
            raise RuntimeError("rejected key sk-ant-trace-0123456789")
        except RuntimeError:
            logger.exception("call failed", stack_info=True)
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert "sk-ant-trace-0123456789" not in text
    assert f"RuntimeError: rejected key {REDACTED}" in text and "Stack (most recent" in text


def test_a_short_database_password_leaves_stored_json_and_logs_intact(monkeypatch):
    """A password too short to redact ('ok') must not rewrite keys or words: the JSON a store
    writes and a log line are what they were; the URL as a whole is still redacted."""
    dsn = "postgresql://reactor:ok@127.0.0.1:5432/coordination"
    monkeypatch.setenv("REACTOR_DATABASE_URL", dsn)
    assert "ok" not in known_secrets() and dsn in known_secrets()
    value = {"token_count": 3, "note": "looks ok", "url": dsn}
    assert json.loads(dumps_redacted(value)) == {**value, "url": REDACTED}
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "tokens ok: %s", ("broken",), None)
    RedactingFilter().filter(record)
    assert record.getMessage() == "tokens ok: broken"


def test_a_numeric_password_never_breaks_a_stored_number(monkeypatch):
    """A password of digits (long enough to be a secret) redacts strings that contain it, but
    a number equal to it is data: the JSON stays valid and the number is kept."""
    monkeypatch.setenv("REACTOR_DATABASE_URL", "postgresql://reactor:20242024@127.0.0.1/db")
    stored = dumps_redacted({"year": 20242024, "quoted": "pin 20242024"}, indent=2)
    assert json.loads(stored) == {"year": 20242024, "quoted": f"pin {REDACTED}"}


def test_dumps_redacted_redacts_values_not_keys_or_structure(monkeypatch):
    """A secret that is part of a key name stays in the key (the key is structure, an id or a
    field name); in string values, and in strings `default=` makes, it is redacted."""
    monkeypatch.setenv("SERVICE_API_SECRET", "fencing_token")
    stored = dumps_redacted(
        {"fencing_token": 7, "error": "bad fencing_token", "when": Path("/x/fencing_token")},
        default=str,
    )
    assert json.loads(stored) == {
        "fencing_token": 7,
        "error": f"bad {REDACTED}",
        "when": f"/x/{REDACTED}",
    }


@pytest.mark.parametrize(
    ("url", "bare", "masked"),
    [
        ("postgresql://u:pw@db:5432/x", "postgresql://db:5432/x", "postgresql://u:***@db:5432/x"),
        ("http://token@h/p", "http://h/p", "http://token@h/p"),
        ("http://a:p@ss@h:99999", "http://h:99999", "http://a:***@h:99999"),  # bad port, @ in pw
        ("http://a:pw@[::1", "http://[::1", "http://a:***@[::1"),  # no parser accepts it
        ("http://h/a@b", "http://h/a@b", "http://h/a@b"),  # an @ in the path is not userinfo
        ("not a url", "not a url", "not a url"),
    ],
)
def test_without_credentials_drops_userinfo_even_from_malformed_urls(url, bare, masked):
    assert without_credentials(url) == bare
    assert without_credentials(url, mask="***") == masked


def test_url_password_is_the_userinfo_password_as_written():
    assert url_password("postgresql://u:p%40ss@db/x") == "p%40ss"
    assert url_password("http://token@h") is None and url_password("http://h") is None
