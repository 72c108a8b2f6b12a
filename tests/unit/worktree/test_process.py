"""A service is found again by its identity (pid, start time, command line), never by its pid
alone: a pid reused by an unrelated process is never signalled nor reported as the service."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time

import psutil
import pytest

from tasks.worktree import identity, process
from tasks.worktree.environment import process_env
from tests.waiting import wait_until

SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)"]
OTHER = [sys.executable, "-c", "import time; time.sleep(121)"]


@pytest.fixture
def unrelated():
    """A process someone else started (not through `start_process`)."""
    started: list[subprocess.Popen] = []

    def start(argv=OTHER) -> subprocess.Popen:
        started.append(subprocess.Popen(argv, start_new_session=True))
        # running its program, as a process someone recorded was: Popen returns before the exec
        wait_until(f"{argv} to run", lambda: psutil.Process(started[-1].pid).cmdline() == argv)
        return started[-1]

    yield start
    for proc in started:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize("argv", [OTHER, SLEEPER], ids=["other-program", "same-command-later"])
def test_a_reused_pid_is_never_signalled_nor_reported_alive(tmp_path, unrelated, argv):
    service = process.start_process(SLEEPER, tmp_path, process_env({}, {}), tmp_path / "s.log")
    assert process.is_alive(service)
    assert process.stop_process(service) and not process.is_alive(service)
    time.sleep(0.05)  # a pid is reused only after its process exited: the newcomer is younger
    # hours later the kernel has handed the service's pid to an unrelated process
    other = unrelated(argv)
    reused = service.model_copy(update={"pid": other.pid})
    assert not process.is_alive(reused)
    assert process.stop_process(reused) is False
    assert other.poll() is None, "an unrelated process was killed"
    assert "now belongs to another process" in process.mismatch(reused)


def test_a_process_recorded_elsewhere_is_stopped_when_its_identity_matches(unrelated):
    proc = unrelated(SLEEPER)
    recorded = identity.identify_spawned(proc.pid)  # as another flow run recorded it
    assert recorded.cmdline == SLEEPER and recorded.create_time and recorded.boot_ticks
    assert process.is_alive(recorded)
    assert process.stop_process(recorded)
    assert proc.wait(timeout=10) is not None


def test_a_bare_pid_without_identity_is_never_signalled(unrelated):
    proc = unrelated()
    bare = process.ProcessIdentity(pid=proc.pid)
    assert not process.is_alive(bare) and process.stop_process(bare) is False
    assert proc.poll() is None
    assert "without its start time" in process.mismatch(bare)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="psutil's Linux boot time")
def test_a_service_stays_itself_when_the_wall_clock_is_adjusted(unrelated, monkeypatch):
    proc = unrelated(SLEEPER)
    recorded = identity.identify_spawned(proc.pid)  # as another flow run recorded it
    # the clock is stepped by a second (NTP, a VM's clock sync): Linux recomputes its boot
    # time from the wall clock, and psutil's create_time of every process moves with it
    from psutil import _pslinux

    boot_time = _pslinux.boot_time
    monkeypatch.setattr(_pslinux, "boot_time", lambda: boot_time() + 1.0)
    assert abs(psutil.Process(proc.pid).create_time() - recorded.create_time) >= 0.99
    assert process.is_alive(recorded), "a live service taken for a dead one"
    assert process.mismatch(recorded) is None
    assert process.stop_process(recorded)
    assert proc.wait(timeout=10) is not None


def test_a_service_started_but_never_recorded_is_found_by_its_mark(tmp_path):
    env, log = process_env({}, {}), tmp_path / "s.log"
    marked = process.start_process(SLEEPER, tmp_path, env, log, owner=identity.owner("r1", "db"))
    unmarked = subprocess.Popen(SLEEPER, cwd=tmp_path, start_new_session=True)
    elsewhere = process.start_process(
        SLEEPER, tmp_path.parent, env, log, owner=identity.owner("r1", "db")
    )
    try:
        found = identity.unrecorded(tmp_path, identity.owner("r1", "db"))
        assert found is not None and found.pid == marked.pid and process.is_alive(found)
        assert identity.unrecorded(tmp_path, identity.owner("r2", "db")) is None
        assert identity.unrecorded(tmp_path, identity.owner("r1", "api")) is None
        assert [i.pid for i in identity.marked_under(tmp_path)] == [marked.pid]
    finally:
        for started in (marked, elsewhere):
            process.stop_process(started)
        unmarked.kill()
        unmarked.wait()


# A start command whose own child binds the port (a wrapper, as `npm start` is): it writes the
# port once the socket listens.
LISTENER = """
import socket, sys, time
sock = socket.create_server(("127.0.0.1", 0))
open(sys.argv[1] + ".part", "w").write(str(sock.getsockname()[1]))
__import__("os").rename(sys.argv[1] + ".part", sys.argv[1])
time.sleep(120)
"""


def test_a_service_listens_on_the_port_its_child_bound_and_on_no_other(tmp_path):
    ready = tmp_path / "port"
    argv = ["sh", "-c", f'"{sys.executable}" -c "$0" "$1"; :', LISTENER, str(ready)]
    started = process.start_process(argv, tmp_path, process_env({}, {}), tmp_path / "s.log")
    other = socket.create_server(("127.0.0.1", 0))  # a port someone else listens on
    try:
        wait_until("the service's child to listen", ready.exists)
        port = int(ready.read_text())
        assert process.listens_on(started, port) is True
        assert process.listens_on(started, other.getsockname()[1]) is False
    finally:
        other.close()
        process.stop_process(started)
    assert process.listens_on(started, port) is False


def test_a_just_spawned_process_is_recorded_with_its_own_command_line():
    # Popen returns a moment before the kernel shows the new program's arguments, and a read
    # then gives an empty command line: about 1 spawn in 1,000 on 2 loaded cores, so this
    # catches a regression in some runs, not every run
    empty = 0
    for _ in range(300):
        proc = subprocess.Popen(SLEEPER, stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            empty += identity.identify_spawned(proc.pid).cmdline != SLEEPER
        finally:
            proc.kill()
            proc.wait()
    assert empty == 0


# A parent that adopts orphans (a child subreaper, as init is) and never reaps them, like a
# container's PID 1 that is not an init: it prints the pid of a service whose starter exited.
NON_REAPING_PARENT = """
import ctypes, os, subprocess, sys, time
ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
starter = os.fork()
if starter == 0:
    service = subprocess.Popen(sys.argv[1:], start_new_session=True)
    print(service.pid, flush=True)
    os._exit(0)
os.waitpid(starter, 0)
time.sleep(600)
"""


def test_an_orphaned_service_is_stopped_without_waiting_for_init_to_reap_it():
    """A service whose deployment died belongs to init; stopped, it stays a zombie until init
    reaps it. The stop returns once it has exited, not after its grace period."""
    parent = subprocess.Popen(
        [sys.executable, "-c", NON_REAPING_PARENT, *SLEEPER], stdout=subprocess.PIPE, text=True
    )
    try:
        pid = int(parent.stdout.readline())
        wait_until("the service to run", lambda: psutil.Process(pid).cmdline() == SLEEPER)
        # orphaned once its starter has exited (a moment after printing), adopted, never reaped
        wait_until("the parent to adopt it", lambda: psutil.Process(pid).ppid() == parent.pid)
        recorded = identity.identify_spawned(pid)
        stopped: list[bool] = []
        worker = threading.Thread(
            target=lambda: stopped.append(process.stop_process(recorded, grace_s=600)),
            daemon=True,
        )
        worker.start()
        wait_until("the stop to return", lambda: stopped, timeout_s=60)
        assert stopped == [True]
        assert psutil.Process(pid).status() == psutil.STATUS_ZOMBIE  # exited, still unreaped
        assert not process.is_alive(recorded)
    finally:
        parent.kill()
        parent.wait()
