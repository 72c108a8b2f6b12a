"""What the local servers for trying the multi-host mode on one machine share
(`deployments.postgres`, `deployments.objectstore`): a directory of their own (owner-only), the
server's log in it, and a state record (state.json, owner-only: it holds the generated
credentials) of what finds the server again."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class LocalService:
    """A local server kept in `root`: server.log and state.json."""

    root: Path

    @property
    def state_file(self) -> Path:
        return self.root / "state.json"

    @property
    def log(self) -> Path:
        return self.root / "server.log"

    def state(self) -> dict[str, Any]:
        """The recorded state; empty when nothing was recorded yet."""
        return json.loads(self.state_file.read_text()) if self.state_file.exists() else {}

    def save_state(self, state: dict[str, Any]) -> None:
        """Record `state`, readable by the owner only."""
        self.state_file.write_text(json.dumps(state))
        os.chmod(self.state_file, 0o600)

    def make_root(self) -> None:
        """Create `root`, readable by the owner only."""
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o700)

    def log_tail(self, chars: int = 2000) -> str:
        """The end of the server's log, for an error saying why it did not start."""
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""
