"""The swarm scenario's errors (pure: no Prefect)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tasks.errors import ReactorError, RolledBack

if TYPE_CHECKING:
    from tasks.swarm.models import SwarmResult


class SuccessRateTooLow(ReactorError):
    """Fewer tasks completed than `min_success_rate` demands."""


class SwarmRolledBack(RolledBack):
    """A swarm run failed after executing its plan and was rolled back; `result` is what it did,
    with `result.compensations` listing what was undone."""

    def __init__(self, message: str, compensations: list[str], result: SwarmResult) -> None:
        super().__init__(message, compensations)
        self.result = result

    def __reduce__(self):
        return (type(self), (self.message, self.compensations, self.result))
