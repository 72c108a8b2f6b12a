"""Teardown's request, the unsaved work it refuses to destroy, and what it removed."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, field_validator

from tasks.worktree.models.request import check_name

__all__ = ["TeardownItem", "TeardownRequest", "TeardownResult", "UnsavedWork"]


class TeardownRequest(BaseModel):
    names: list[str] | None = None  # None: every registered environment
    repo_path: Path | None = None  # only environments of this repository
    # remove worktrees even when uncommitted files or unmerged commits would be lost
    force: bool = False

    @field_validator("names")
    @classmethod
    def _names(cls, v: list[str] | None) -> list[str] | None:
        return [check_name(n) for n in v] if v is not None else None


class UnsavedWork(BaseModel):
    """What removing one worktree would destroy."""

    name: str
    path: Path
    uncommitted: list[str] = Field(default_factory=list)  # paths, as `git status` shows them
    unmerged: list[str] = Field(default_factory=list)  # "<short sha> <subject>"
    other: str | None = None  # e.g. the directory is no longer a git worktree

    @property
    def at_risk(self) -> bool:
        return bool(self.uncommitted or self.unmerged or self.other)

    def line(self) -> str:
        """One line naming the worktree and what would be lost."""
        lost = []
        if self.uncommitted:
            shown = ", ".join(self.uncommitted[:3]) + (", …" if len(self.uncommitted) > 3 else "")
            lost.append(f"{len(self.uncommitted)} uncommitted file(s) ({shown})")
        if self.unmerged:
            shown = ", ".join(self.unmerged[:2]) + (", …" if len(self.unmerged) > 2 else "")
            lost.append(
                f"{len(self.unmerged)} commit(s) not on the base or any other branch ({shown})"
            )
        if self.other:
            lost.append(self.other)
        return f"worktree {self.name!r} at {self.path} has " + " and ".join(lost)


class TeardownItem(BaseModel):
    name: str
    stopped_pid: int | None = None
    worktree_removed: bool = False
    branch_deleted: str | None = None
    port_released: int | None = None
    detail: str = ""


class TeardownResult(BaseModel):
    items: list[TeardownItem]
    pruned: list[str] = Field(default_factory=list)
    forced: list[str] = Field(default_factory=list)  # removed with --force despite unsaved work
