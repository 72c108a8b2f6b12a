"""The one exception hierarchy: callers catch what they mean."""

from __future__ import annotations

import threading

_redacting = threading.local()


class ReactorError(Exception):
    """Base of every error this project raises on purpose. Its message holds no known secret:
    it becomes a Prefect state message, a pickled result and the CLI's error line."""

    def __init__(self, *args: object) -> None:
        super().__init__(*(_redacted(a) if isinstance(a, str) else a for a in args))


def _redacted(text: str) -> str:
    if getattr(_redacting, "active", False):  # an error raised while secrets are looked up
        return text
    _redacting.active = True
    try:
        from tasks.redaction import redact  # local: redaction reads settings, which raise these

        return redact(text)
    finally:
        _redacting.active = False


class InvalidInput(ReactorError, ValueError):
    """User input is wrong; the message names the value and what would be valid."""


class DependencyCycle(InvalidInput):
    """A dependency graph has a cycle; `cycle` lists it in order, first node repeated last."""

    def __init__(self, cycle: list[str], what: str = "dependency") -> None:
        self.cycle = list(cycle)
        super().__init__(f"{what} cycle: {' -> '.join(self.cycle)}")

    def __reduce__(self):  # keep pickling (Prefect result persistence) working
        return (type(self), (self.cycle,))


class CorruptStore(ReactorError):
    """A coordination store cannot be read (a JSON or JSON Lines file that does not parse, a
    SQLite file that is not a database); it is left untouched for a human to inspect."""


class LockTimeout(ReactorError):
    """A file lock could not be acquired within the retry budget."""


class CoordinationConflict(ReactorError):
    """Another actor owns the resource (a claim, a port, a worktree name)."""


class ServiceUnhealthy(ReactorError):
    """A service did not become healthy, or an external system failed its call."""


class LLMUnavailable(ReactorError):
    """The Claude path could not produce a valid answer; `reason` says why (for fallback_reason)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)

    def __reduce__(self):
        return (type(self), (self.reason,))


class RolledBack(ReactorError):
    """A transaction failed and its compensations ran; `compensations` lists them in run order."""

    def __init__(self, message: str, compensations: list[str]) -> None:
        self.compensations = list(compensations)
        done = "; ".join(self.compensations) or "nothing to undo"
        super().__init__(f"{message} (compensated: {done})")
        self.message = _redacted(message)

    def __reduce__(self):
        return (type(self), (self.message, self.compensations))


class StoreUnavailable(ReactorError):
    """A shared store (the PostgreSQL coordination database) cannot be reached or used; the
    message names it by host, port and database, never with its password."""
