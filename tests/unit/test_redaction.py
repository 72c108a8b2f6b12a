from __future__ import annotations

import logging

from tasks.redaction import REDACTED, RedactingFilter, redact


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
