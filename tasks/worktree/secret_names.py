"""Which environment variables hold secrets: the names `tasks.redaction` treats as secret
(token, secret, password, api key, credential, ...) plus `*_KEY` (STRIPE_KEY, SIGNING_KEY)."""

from __future__ import annotations

import re

from tasks.redaction import REDACTED, SENSITIVE_NAME

_KEY_NAME = re.compile(r"(^|_)KEY$", re.I)


def is_secret_name(name: str) -> bool:
    return bool(SENSITIVE_NAME.search(name) or _KEY_NAME.search(name))


def redacted(env: dict[str, str]) -> dict[str, str]:
    """`env` with the value of every secret-named variable replaced by `[REDACTED]`."""
    return {k: REDACTED if is_secret_name(k) and v else v for k, v in env.items()}


def secret_values(env: dict[str, str]) -> list[str]:
    return [v for k, v in env.items() if is_secret_name(k) and v]
