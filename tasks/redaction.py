"""Keep secrets out of spans, logs, stores and exports.

A value is secret when it is a configured secret (e.g. the Anthropic key), the value of an
environment variable whose name says it is one, a value registered with `register_secret`, or
sits under a key whose name says so. The shared mechanisms, one per boundary:

- `redact` (known values and sensitive key names) for what people read: artifacts, events,
  span attributes;
- `RedactingFilter` on every log handler (message, arguments, exception traceback and stack);
- the redacting span processor of `tasks/telemetry.py` in front of every exporter;
- `redact_values` / `dumps_redacted` (known values only: a store's keys are ids and field
  names such as `fencing_token`, which must survive) where data is persisted: the JSON store
  and JSON Lines appender, the claim ledger (SQLite and PostgreSQL), the dataset exporter, and
  a service's log file (`tasks/worktree/log_relay.py`). They redact string values, never the
  serialised text: keys, numbers and the structure stay intact.

Every secret, configured or discovered, is at least `_MIN_SECRET_LEN` characters: a shorter
one is not redacted anywhere (it cannot be told apart from ordinary text).
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterable
from typing import Any, get_args

REDACTED = "[REDACTED]"
SENSITIVE_NAME = re.compile(
    r"(authorization|api[-_]?key|x-api-key|token|secret|password|passwd|cookie|credential)", re.I
)
_MIN_SECRET_LEN = 8  # shorter values would redact ordinary words

_extra_secrets: set[str] = set()
# a URL's userinfo as urllib splits it (up to the last @ before the path), so a URL no parser
# accepts (a bad port, an unclosed [) still loses its credentials
_USERINFO = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/?#]*)@")


def url_password(url: str) -> str | None:
    """The password in `url`'s userinfo (`scheme://user:password@…`) as written, or None."""
    found = _USERINFO.match(url)
    if not found:
        return None
    _, colon, password = found["userinfo"].partition(":")
    return password if colon and password else None


def without_credentials(url: str, mask: str | None = None) -> str:
    """`url` without its userinfo (`user:password@`), or, given `mask`, with the user kept and
    the password replaced by `mask`; a URL without userinfo is returned as it is."""
    found = _USERINFO.match(url)
    if not found:
        return url
    if mask is None:
        return found["scheme"] + url[found.end() :]
    user, colon, _ = found["userinfo"].partition(":")
    return f"{found['scheme']}{user}{':' + mask if colon else ''}@{url[found.end() :]}"


def register_secret(value: str) -> None:
    """Treat `value` as secret from now on (e.g. a key passed in a request)."""
    if value and len(value) >= _MIN_SECRET_LEN:
        _extra_secrets.add(value)


_cache: tuple[int, list[str]] | None = None


def known_secrets() -> list[str]:
    """Every secret value this process knows of, longest first."""
    global _cache
    # runs on every span end, where building Settings is too slow (bench/trace_bench.py): the
    # answer changes only with the environment or the registered secrets, its cache key
    key = hash((frozenset(os.environ.items()), frozenset(_extra_secrets)))
    cached = _cache
    if cached is not None and cached[0] == key:
        return list(cached[1])
    found = set(_extra_secrets) | set(_configured_secrets())
    found.update(v for name, v in os.environ.items() if SENSITIVE_NAME.search(name))
    # one minimum for every source: a configured secret shorter than this (a database password
    # "ok" or "2024") would redact ordinary words and numbers, so it is not redacted at all
    found = {v for v in found if len(v) >= _MIN_SECRET_LEN}
    secrets = sorted(found, key=len, reverse=True)
    _cache = (key, secrets)
    return list(secrets)


def _configured_secrets() -> list[str]:
    """The settings' secret values; while the settings do not validate (a bad `REACTOR_*` value),
    the raw values of their secret variables, so that the error saying so can still be raised."""
    from pydantic import SecretStr, ValidationError

    from tasks.settings import Settings, get_settings  # local: settings raise errors.py's errors

    try:
        return get_settings().secret_values()
    except ValidationError:
        prefix = Settings.model_config.get("env_prefix", "")
        names = {
            f"{prefix}{name}".upper()
            for name, field in Settings.model_fields.items()
            if SecretStr in (field.annotation, *get_args(field.annotation))
        }
        return [value for name, value in os.environ.items() if name.upper() in names]


def redact_text(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def redact(value: Any, secrets: Iterable[str] | None = None, key: str | None = None) -> Any:
    """A copy of `value` (str, number, list, dict, nested) with secrets replaced by [REDACTED]."""
    secrets = known_secrets() if secrets is None else list(secrets)
    if key is not None and SENSITIVE_NAME.search(key) and value not in (None, ""):
        return REDACTED
    if isinstance(value, str):
        return redact_text(value, secrets)
    if isinstance(value, dict):
        return {k: redact(v, secrets, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(redact(v, secrets) for v in value)
    return value


def redact_values(value: Any, secrets: Iterable[str] | None = None) -> Any:
    """A copy of `value` (nested dicts, lists, tuples) with every known secret inside a string
    replaced by [REDACTED]; keys and non-string values are kept (unlike `redact`, no key name
    makes a value secret). The identity when no secret is known."""
    secrets = known_secrets() if secrets is None else list(secrets)
    if not secrets:
        return value
    return _redact_values(value, secrets)


def _redact_values(value: Any, secrets: list[str]) -> Any:
    if isinstance(value, str):
        return redact_text(value, secrets)
    if isinstance(value, dict):
        return {k: _redact_values(v, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_redact_values(v, secrets) for v in value)
    return value


def dumps_redacted(value: Any, **json_options: Any) -> str:
    """`json.dumps(value, **json_options)` with no known secret in a string value: the values
    are redacted before they are serialised (a string made by `default=` included), never the
    serialised text, so keys, numbers and the JSON's structure are kept as they are."""
    text = json.dumps(value, **json_options)
    secrets = known_secrets()
    ensure_ascii = json_options.get("ensure_ascii", True)
    if not any(json.dumps(s, ensure_ascii=ensure_ascii)[1:-1] in text for s in secrets):
        return text  # the common case: one serialisation, no copy of the value
    default = json_options.pop("default", None)
    if default is not None:
        json_options["default"] = lambda o: _redact_values(default(o), secrets)
    return json.dumps(_redact_values(value, secrets), **json_options)


_TRACEBACKS = logging.Formatter()


class RedactingFilter(logging.Filter):
    """A logging filter that rewrites records so secrets never reach a handler: the message
    with its arguments, and an exception's traceback (`exc_info`, rendered once here into
    `exc_text`, which every formatter prints instead) and `stack_info`."""

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = known_secrets()
        if not secrets:
            return True
        record.msg = redact_text(record.getMessage(), secrets)
        record.args = None
        if record.exc_info:
            # the exception object itself is dropped: a handler rendering it (its message,
            # a rich traceback's locals) would print the secret again
            record.exc_text = record.exc_text or _TRACEBACKS.formatException(record.exc_info)
            record.exc_info = None
        if record.exc_text:
            record.exc_text = redact_text(record.exc_text, secrets)
        if record.stack_info:
            record.stack_info = redact_text(record.stack_info, secrets)
        return True


def install_log_redaction() -> int:
    """Add `RedactingFilter` to every handler configured so far (Prefect's console and API
    handlers included); a handler-level filter also covers records propagated from child
    loggers, which a logger-level one would miss. Idempotent; returns handlers newly covered."""
    loggers = [logging.getLogger()] + [
        lg for lg in logging.root.manager.loggerDict.values() if isinstance(lg, logging.Logger)
    ]
    added = 0
    for handler in {h for lg in loggers for h in lg.handlers}:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
            added += 1
    return added
