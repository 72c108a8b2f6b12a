"""The worktree scenario's boundary models (docs/worktree.md), one module per concept: the
request, the deployment's outcome, the registry's records, the monitor and teardown. Import
them from here."""

from __future__ import annotations

from tasks.worktree.models import monitor, outcome, registry, request, teardown
from tasks.worktree.models.monitor import *  # noqa: F403
from tasks.worktree.models.outcome import *  # noqa: F403
from tasks.worktree.models.registry import *  # noqa: F403
from tasks.worktree.models.request import *  # noqa: F403
from tasks.worktree.models.teardown import *  # noqa: F403

__all__ = [
    *request.__all__,
    *outcome.__all__,
    *registry.__all__,
    *monitor.__all__,
    *teardown.__all__,
]
