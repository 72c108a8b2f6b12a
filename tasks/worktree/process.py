"""Installing, starting and stopping a service: argument lists (never a shell), the user's
environment winning over ours, output to log files, each service in its own session so that
stopping it stops everything it spawned."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from tasks.worktree.models import ELIXIR_TYPES, WorktreeSpec, WorktreeType

# The seed's Elixir commands, kept as defaults only: a user's command always wins.
DEFAULT_COMMANDS: dict[WorktreeType, tuple[list[str], list[str]]] = {
    WorktreeType.phoenix: (["mix", "deps.get"], ["mix", "phx.server"]),
    WorktreeType.xavos: (["mix", "deps.get"], ["mix", "phx.server"]),
    WorktreeType.beamops: (["mix", "deps.get"], ["mix", "run", "--no-halt"]),
    WorktreeType.engineering_elixir_apps: (["mix", "deps.get"], ["mix", "phx.server"]),
}

# Popen objects of services this process started, so a stopped or killed one is reaped (a
# zombie would still look like a live child to psutil).
_children: dict[int, subprocess.Popen] = {}


class StartFailed(Exception):
    """The start command could not be launched (missing executable, bad cwd, ...)."""


@dataclass(frozen=True)
class Commands:
    install: list[str] | None
    start: list[str]


def resolve_executable(argv: list[str]) -> list[str]:
    """`python`/`python3` mean the interpreter running the flow (so a venv's packages are
    there); anything else is looked up on PATH by the OS."""
    if argv and argv[0] in ("python", "python3"):
        return [sys.executable, *argv[1:]]
    return list(argv)


def commands_for(spec: WorktreeSpec) -> Commands:
    install, start = DEFAULT_COMMANDS.get(spec.type, (None, None))
    install = spec.install_command if spec.install_command is not None else install
    start = spec.start_command if spec.start_command is not None else start
    assert start is not None  # the model requires a start command for non-Elixir types
    return Commands(
        install=resolve_executable(install) if install else None,
        start=resolve_executable(start),
    )


def service_environment(
    spec: WorktreeSpec, port: int, worktree_path: Path, databases: dict[str, str]
) -> dict[str, str]:
    """What we set for a service: PORT, names, databases, MIX_ENV=dev for Elixir types."""
    ours = {
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "WORKTREE_NAME": spec.name,
        "WORKTREE_BRANCH": spec.branch,
        "WORKTREE_PATH": str(worktree_path),
        "OTEL_SERVICE_NAME": spec.name,
        "DATABASE_DEV": databases["dev"],
        "DATABASE_TEST": databases["test"],
    }
    if spec.type in ELIXIR_TYPES:
        ours["MIX_ENV"] = "dev"
    return ours


def process_env(ours: dict[str, str], user: dict[str, str]) -> dict[str, str]:
    """The child's environment: the parent's, then ours (except a MIX_ENV the parent already
    has: never overwrite it), then the user's `environment_variables`, which always win."""
    env = dict(os.environ)
    for key, value in ours.items():
        if key == "MIX_ENV" and key in env:
            continue
        env[key] = value
    env.update(user)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_install(argv: list[str], cwd: Path, env: dict[str, str], log_path: Path, timeout_s: float):
    """Run the install command to completion; returns (exit code, elapsed ms)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with open(log_path, "ab") as log:
        log.write(f"$ {argv}\n".encode())
        log.flush()
        try:
            done = subprocess.run(
                argv,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=timeout_s,
                start_new_session=True,
            )
            code = done.returncode
        except FileNotFoundError as exc:
            log.write(f"{exc}\n".encode())
            code = 127
        except subprocess.TimeoutExpired:
            code = 124
    return code, (time.perf_counter() - started) * 1000


def start_process(argv: list[str], cwd: Path, env: dict[str, str], log_path: Path) -> int:
    """Launch the service in a new session (its pid is its process-group id); returns the pid."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        try:
            proc = subprocess.Popen(
                argv,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
            )
        except OSError as exc:
            raise StartFailed(f"could not start {argv[0]!r}: {exc}") from None
    _children[proc.pid] = proc
    return proc.pid


def is_alive(pid: int | None) -> bool:
    """True for a running (non-zombie) process; reaps our own dead children."""
    if not pid:
        return False
    child = _children.get(pid)
    if child is not None and child.poll() is not None:
        _children.pop(pid, None)
        return False
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def exit_code(pid: int) -> int | None:
    child = _children.get(pid)
    return child.poll() if child is not None else None


def stop_process(pid: int | None, grace_s: float = 3.0) -> bool:
    """SIGTERM the service's process group, SIGKILL what is left after `grace_s`, reap it.
    Returns True when something was running."""
    if not pid:
        return False
    was_alive = is_alive(pid)
    try:
        members = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        members = []
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
        for member in members:
            try:
                member.send_signal(sig)
            except psutil.NoSuchProcess:
                pass
        _, alive = psutil.wait_procs(members, timeout=grace_s if sig == signal.SIGTERM else 5)
        members = alive
        child = _children.get(pid)
        if child is not None:
            try:
                child.wait(timeout=0.5 if sig == signal.SIGTERM else 5)
                _children.pop(pid, None)
            except subprocess.TimeoutExpired:
                pass
        if not members and pid not in _children:
            break
    return was_alive


def log_tail(log_path: Path, lines: int = 5) -> str:
    try:
        text = log_path.read_text(errors="replace")
    except FileNotFoundError:
        return ""
    return " | ".join(text.strip().splitlines()[-lines:])
