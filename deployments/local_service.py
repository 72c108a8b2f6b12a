"""What the local servers for trying the multi-host mode on one machine share
(`deployments.postgres`, `deployments.objectstore`): a directory of their own (owner-only), the
server's log in it, and a state record (state.json, owner-only: it holds the generated
credentials) of what finds the server again."""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar


@dataclass
class LocalService:
    """A local server kept in `root`: server.log and state.json. A server says how its command
    line (`main`) shows it: `show_command` prints what a client needs (`show()`), `status` its
    `address()`, and `start` what `announce()` says."""

    root: Path

    show_command: ClassVar[str]
    not_running: ClassVar[str]  # the hint when it is not running

    # what each server provides
    def start(self) -> Any: ...
    def stop(self) -> None: ...
    def running(self) -> bool: ...
    def address(self) -> str: ...
    def show(self) -> str: ...
    def announce(self) -> None: ...  # after `start`: what clients need (stdout), how (stderr)

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


def main(
    service: type[LocalService],
    argv: list[str] | None,
    description: str,
    state_dir: Path,
    errors: tuple[type[Exception], ...],
) -> int:
    """`python -m deployments.<service> start|stop|<show>|status [--dir DIR]`; the exit code."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("command", choices=["start", "stop", service.show_command, "status"])
    parser.add_argument("--dir", type=Path, default=state_dir, help="data and state directory")
    args = parser.parse_args(argv)
    server = service(args.dir.resolve())
    try:
        if args.command == "start":
            server.start()
            server.announce()
        elif args.command == "stop":
            server.stop()
            print(f"stopped (data kept in {server.root})", file=sys.stderr)
        elif server.running():
            shown = server.show() if args.command == service.show_command else None
            print(shown or f"running: {server.address()}")
        else:
            print(service.not_running, file=sys.stderr)
            return 1
    except errors as exc:
        detail = getattr(exc, "stderr", None) or str(exc)
        print(f"error: {detail.strip()}", file=sys.stderr)
        return 1
    return 0
