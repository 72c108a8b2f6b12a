"""The worktree scenario's errors, in the project's hierarchy (`tasks.errors`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tasks.errors import ReactorError, RolledBack

if TYPE_CHECKING:
    from tasks.worktree.models import DeploymentResult, UnsavedWork


class WorktreeError(ReactorError):
    """git refused to create, validate or remove a worktree; the message carries git's reason."""


class UnsavedWorkError(WorktreeError):
    """A teardown would destroy uncommitted files or commits; nothing was touched. One line per
    worktree at risk, and how to go on."""

    def __init__(self, unsaved: list[UnsavedWork]) -> None:
        self.unsaved = list(unsaved)
        lines = [f"refusing to tear down {u.line()}" for u in self.unsaved]
        super().__init__(
            "; ".join(lines) + ": commit or push it, or pass --force (force=True) to discard it"
        )

    def __reduce__(self):
        return (type(self), (self.unsaved,))


class DeploymentRolledBack(RolledBack):
    """A deployment failed and was undone; `result` is the deployment as far as it got, with
    `compensations` listing every undo in run order."""

    def __init__(self, message: str, compensations: list[str], result: DeploymentResult) -> None:
        super().__init__(message, compensations)
        self.result = result

    def __reduce__(self):
        return (type(self), (self.message, self.compensations, self.result))
