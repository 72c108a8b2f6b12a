"""A service is found again by its identity (pid, start time, command line), never by its pid
alone: a pid reused by an unrelated process is never signalled nor reported as the service."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from tasks.worktree import process
from tasks.worktree.environment import process_env

SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)"]
OTHER = [sys.executable, "-c", "import time; time.sleep(121)"]


@pytest.fixture
def unrelated():
    """A process someone else started (not through `start_process`)."""
    started: list[subprocess.Popen] = []

    def start(argv=OTHER) -> subprocess.Popen:
        started.append(subprocess.Popen(argv, start_new_session=True))
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
    identity = process.identify(proc.pid)  # as another flow run recorded it
    assert identity.cmdline == SLEEPER and identity.create_time
    assert process.is_alive(identity)
    assert process.stop_process(identity)
    assert proc.wait(timeout=10) is not None


def test_a_bare_pid_without_identity_is_never_signalled(unrelated):
    proc = unrelated()
    bare = process.ProcessIdentity(pid=proc.pid)
    assert not process.is_alive(bare) and process.stop_process(bare) is False
    assert proc.poll() is None
    assert "without its start time" in process.mismatch(bare)
