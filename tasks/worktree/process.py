"""Installing, starting and stopping a service: argument lists (never a shell), output to log
files through a redacting relay (`log_relay.py`: no secret the service prints reaches the file),
each service in its own session so that stopping it stops everything it spawned.

A service is found again by its `ProcessIdentity` (pid, start time, command line; see
`identity.py`), never by its pid alone: the registry is read by other processes hours later,
when the pid may belong to an unrelated process. Signals go only to a process that matches.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from tasks.redaction import register_secret
from tasks.worktree.environment import base_environment, secrets_held
from tasks.worktree.identity import OWNER_VAR, identify_spawned, marked_under, matches
from tasks.worktree.log_relay import SECRETS_VAR
from tasks.worktree.models import ProcessIdentity, WorktreeSpec, WorktreeType

# The usual Elixir commands, kept as defaults only: a user's command always wins.
DEFAULT_COMMANDS: dict[WorktreeType, tuple[list[str], list[str]]] = {
    WorktreeType.phoenix: (["mix", "deps.get"], ["mix", "phx.server"]),
    WorktreeType.xavos: (["mix", "deps.get"], ["mix", "phx.server"]),
    WorktreeType.beamops: (["mix", "deps.get"], ["mix", "run", "--no-halt"]),
    WorktreeType.engineering_elixir_apps: (["mix", "deps.get"], ["mix", "phx.server"]),
}

# where `python -m tasks.worktree.log_relay` finds this package whatever the caller's cwd
_PROJECT_ROOT = Path(__file__).resolve().parents[2]
LOG_DIR = ".reactor-logs"  # inside the worktree: removing the worktree removes the logs

# Popen objects of services this process started, so a stopped or killed one is reaped (a
# zombie would still look like a live child to psutil); and each one's log relay.
_children: dict[int, subprocess.Popen] = {}
_relays: dict[int, subprocess.Popen] = {}
# How long a reader of the log waits for the relay to write the last lines: at once when the
# service is gone (the relay sees the end of its pipe), unless something it spawned outside its
# process group still holds the pipe; generous, as the relay may still be starting on a loaded
# machine (its imports take ~0.2 s idle, seconds at a load of 10 on 2 cores).
_RELAY_DRAIN_S = 10.0


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


def log_path_for(worktree: Path, name: str) -> Path:
    return worktree / LOG_DIR / f"{name}.log"


def _log_relay(log_path: Path, env: dict[str, str]) -> tuple[int, subprocess.Popen]:
    """A relay appending to `log_path` what is written to the returned pipe end, secrets
    redacted: the ones the service holds (`environment.secrets_held`), no other service's.
    Like the service, it keeps no descriptor of ours: its stdin is the pipe, its stderr (a
    crash of its own) the log file, and it gets the base environment only (`tasks` is found
    from its working directory, this project's root), so a caller reading our output
    (`reactor worktree deploy 2>&1 | tee`) sees its end when we exit, not at teardown."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    secrets = secrets_held(env)
    for value in secrets:
        register_secret(value)
    relay_env = {**base_environment(), SECRETS_VAR: json.dumps(secrets)}
    read_end, write_end = os.pipe()
    errors = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        relay = subprocess.Popen(
            [sys.executable, "-m", "tasks.worktree.log_relay", str(log_path)],
            stdin=read_end,
            stdout=subprocess.DEVNULL,
            stderr=errors,
            cwd=_PROJECT_ROOT,
            env=relay_env,
            start_new_session=True,
            close_fds=True,
        )
    except BaseException:
        os.close(write_end)
        raise
    finally:
        os.close(read_end)
        os.close(errors)
    return write_end, relay


def _detached(cwd: Path, env: dict[str, str], log: int) -> dict[str, Any]:
    """How a service and its install run: in a session of their own (stopping the group stops
    all they spawned), no stdin, stdout and stderr into the log relay's pipe."""
    return {
        "cwd": cwd,
        "env": env,
        "stdin": subprocess.DEVNULL,
        "stdout": log,
        "stderr": subprocess.STDOUT,
        "start_new_session": True,
        "close_fds": True,
    }


def _drain(relay: subprocess.Popen | None, timeout_s: float = _RELAY_DRAIN_S) -> None:
    """Wait until the relay has written everything (the writers have closed the pipe)."""
    if relay is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            relay.wait(timeout=timeout_s)


def run_install(argv: list[str], cwd: Path, env: dict[str, str], log_path: Path, timeout_s: float):
    """Run the install command to completion; returns (exit code, elapsed ms)."""
    started = time.perf_counter()
    log, relay = _log_relay(log_path, env)
    try:
        os.write(log, f"$ {argv}\n".encode())
        done = subprocess.run(argv, **_detached(cwd, env, log), timeout=timeout_s)
        code = done.returncode
    except FileNotFoundError as exc:
        os.write(log, f"{exc}\n".encode())
        code = 127
    except subprocess.TimeoutExpired:
        code = 124
    finally:
        os.close(log)
    _drain(relay)  # the caller quotes the log's tail
    return code, (time.perf_counter() - started) * 1000


def start_process(
    argv: list[str], cwd: Path, env: dict[str, str], log_path: Path, owner: str | None = None
) -> ProcessIdentity:
    """Launch the service in a new session (its pid is its process-group id), its output
    going to `log_path` through a redacting relay; returns its identity, read once the kernel
    shows the new program's command line (`identity.identify_spawned`). `owner` marks the process
    (`identity.OWNER_VAR`) so that it is found again if this process dies before recording
    it."""
    _reap_relays()
    if owner is not None:
        env = {**env, OWNER_VAR: owner}
    log, relay = _log_relay(log_path, env)
    try:
        proc = subprocess.Popen(argv, **_detached(cwd, env, log))
    except OSError as exc:
        raise StartFailed(f"could not start {argv[0]!r}: {exc}") from None
    finally:
        os.close(log)  # the relay ends once the service (and what it spawned) has closed it
    _children[proc.pid] = proc
    _relays[proc.pid] = relay
    try:
        return identify_spawned(proc.pid)
    except psutil.NoSuchProcess:  # exited at once: still ours until reaped
        return ProcessIdentity(pid=proc.pid)


def _reap_relays() -> None:
    for pid, relay in list(_relays.items()):
        if relay.poll() is not None:
            _relays.pop(pid, None)


def drain_log(pid: int | None) -> None:
    """After the service `pid` (ours, reaped) has exited: wait until its log holds all it
    wrote."""
    if pid is not None and pid not in _children and (relay := _relays.pop(pid, None)):
        _drain(relay)


def _process(identity: ProcessIdentity | None) -> psutil.Process | None:
    """The live process `identity` describes, or None (gone, a zombie, or another process
    now holding the pid)."""
    if identity is None:
        return None
    pid = identity.pid
    child = _children.get(pid)
    if child is not None:  # our own unreaped child: its pid cannot have been reused
        if child.poll() is not None:
            _children.pop(pid, None)
            return None
        return psutil.Process(pid)
    if identity.create_time is None:
        return None  # recorded without identity: never trusted
    try:
        proc = psutil.Process(pid)
        with proc.oneshot():
            if proc.status() == psutil.STATUS_ZOMBIE:
                return None
            same = matches(proc, identity)
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None
    return proc if same else None


def is_alive(identity: ProcessIdentity | None) -> bool:
    """True while the recorded service itself runs (not a process that reused its pid)."""
    return _process(identity) is not None


def listens_on(identity: ProcessIdentity | None, port: int) -> bool | None:
    """Whether the service or a process it started listens on TCP `port`; None where the
    system will not show a process's sockets (psutil's AccessDenied)."""
    proc = _process(identity)
    if proc is None:
        return False
    try:
        members = [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return False
    for member in members:
        try:
            sockets = member.net_connections(kind="tcp")
        except psutil.NoSuchProcess:
            continue
        except psutil.AccessDenied:
            return None
        if any(s.status == psutil.CONN_LISTEN and s.laddr.port == port for s in sockets):
            return True
    return False


def mismatch(identity: ProcessIdentity | None) -> str | None:
    """Why a recorded pid is not signalled although a process holds it, or None."""
    if identity is None or identity.pid in _children or not psutil.pid_exists(identity.pid):
        return None
    if is_alive(identity):
        return None
    if identity.create_time is None:
        return f"pid {identity.pid} was recorded without its start time; not signalled"
    return f"pid {identity.pid} now belongs to another process (start time or command differ)"


def exit_code(pid: int) -> int | None:
    child = _children.get(pid)
    return child.poll() if child is not None else None


def stop_process(identity: ProcessIdentity | None, grace_s: float = 3.0) -> bool:
    """SIGTERM the service's process group, SIGKILL what is left after `grace_s`, reap it.
    Only a process matching `identity` is signalled (or the group of our own child, whose
    pid cannot be reused before we reap it). Returns True when the service was running."""
    if identity is None:
        return False
    pid = identity.pid
    own = pid in _children
    proc = _process(identity)
    if proc is None and not own:
        drain_log(pid)  # it exited by itself: its last lines may still be on their way
        return False
    try:
        members = [proc] if proc is not None else []
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
        members = wait_exited(members, grace_s if sig == signal.SIGTERM else 5)
        _reap(pid, timeout=0.5 if sig == signal.SIGTERM else 5)
        if not members and pid not in _children:
            break
    drain_log(pid)  # a caller quoting the log's tail sees the service's last lines
    return proc is not None


def _exited(proc: psutil.Process) -> bool:
    try:  # is_running: false too once the pid belongs to another process
        return not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_exited(members: list[psutil.Process], timeout_s: float) -> list[psutil.Process]:
    """The members still running after up to `timeout_s`. A zombie has exited: one orphaned by
    a dead deployment is reaped by init, seconds later or never (a PID 1 that does not reap),
    which `psutil.wait_procs` would wait for."""
    deadline = time.monotonic() + timeout_s
    alive = [m for m in members if not _exited(m)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.01)
        alive = [m for m in alive if not _exited(m)]
    return alive


def stop_marked(root: Path) -> list[int]:
    """Stop every marked service running in `root` (`identity.marked_under`: started by a
    deployment killed before it recorded them); the pids stopped."""
    return [found.pid for found in marked_under(root) if stop_process(found)]


def _reap(pid: int | None, timeout: float = 0.0) -> None:
    child = _children.get(pid) if pid else None
    if child is None:
        return
    try:
        child.wait(timeout=timeout)
        _children.pop(pid, None)
    except subprocess.TimeoutExpired:
        pass


def log_tail(log_path: Path, lines: int = 5) -> str:
    try:
        text = log_path.read_text(errors="replace")
    except FileNotFoundError:
        return ""
    return " | ".join(text.strip().splitlines()[-lines:])
