"""Which process a recorded pid is, and the services a run started but never recorded.

A pid alone is not enough: once a service exits, the kernel hands its number to the next
process. A `ProcessIdentity` adds the command line and the start time. On Linux the start time
compared is the kernel's own, in clock ticks since boot (`/proc/<pid>/stat`, field 22), with
the boot id: psutil's `create_time()` adds the boot time the kernel recomputes from the wall
clock on every read, so the same process shows another start time once the clock is adjusted
(a one-second step is enough; giampaolo/psutil#2526), and a live service would be taken for a
dead one. psutil's public API has no clock-independent start time, hence the few lines here.

A service is started with `OWNER_VAR` in its environment (`<run id>/<name>`). A deployment
killed between spawning a service and recording it leaves a process the registry does not
know; its retry and its rollback find it by that mark (`unrecorded`, `marked_under`).
"""

from __future__ import annotations

import contextlib
import functools
import os
import time
from pathlib import Path

import psutil

from tasks.worktree.models import ProcessIdentity

OWNER_VAR = "REACTOR_SERVICE_OWNER"
_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")
# where no tick count is recorded (another OS, an older registry) the wall-clock start time
# is compared, allowing for the boot time's one-second steps
_WALL_CLOCK_SLACK_S = 1.5


def owner(run_id: str, name: str) -> str:
    """The mark a deployment run's service carries in its environment."""
    return f"{run_id}/{name}"


@functools.cache
def _boot_id() -> str | None:
    """This boot's id (read once: it cannot change while this process runs)."""
    try:
        return _BOOT_ID.read_text().strip()
    except OSError:
        return None


def _boot_ticks(pid: int) -> int | None:
    """The process's start in clock ticks since boot (Linux), unaffected by clock updates."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) is in parentheses and may hold spaces or ")"
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[19])  # field 22 counts from field 3, the first after the name


def identify(pid: int) -> ProcessIdentity:
    """The identity of the running process `pid` (raises psutil.NoSuchProcess when gone)."""
    proc = psutil.Process(pid)
    with proc.oneshot():
        create_time, cmdline = proc.create_time(), proc.cmdline()
    return ProcessIdentity(
        pid=pid,
        create_time=create_time,
        cmdline=cmdline,
        boot_ticks=_boot_ticks(pid),
        boot_id=_boot_id(),
    )


def identify_spawned(pid: int, wait_s: float = 2.0) -> ProcessIdentity:
    """The identity of a process `Popen` has just returned. Popen returns once exec has closed
    the child's close-on-exec descriptors, a moment before the kernel has set up the new
    program's arguments, and `/proc/<pid>/cmdline` reads empty in between (1 spawn in 300
    idle, 2 in 2,000 at load 6, measured here): recorded then, a live service would never
    match its identity again."""
    deadline = time.monotonic() + wait_s
    while True:
        found = identify(pid)
        if found.cmdline or time.monotonic() > deadline:
            return found
        if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
            return found  # exited at once
        time.sleep(0.001)


def matches(proc: psutil.Process, identity: ProcessIdentity) -> bool:
    """True when the live process `proc` is the one `identity` recorded."""
    if identity.create_time is None or proc.cmdline() != identity.cmdline:
        return False
    if identity.boot_ticks is not None and identity.boot_id == _boot_id():
        return _boot_ticks(proc.pid) == identity.boot_ticks
    if identity.boot_id is not None and identity.boot_id != _boot_id():
        return False  # recorded before a reboot
    return abs(proc.create_time() - identity.create_time) < _WALL_CLOCK_SLACK_S


def marked_under(root: Path, mark: str | None = None) -> list[ProcessIdentity]:
    """Services (session leaders, as `start_process` starts them) running in `root` or below
    that carry a service mark (`mark` exactly, when given)."""
    root = root.resolve()
    found = []
    for proc in psutil.process_iter(["cwd"]):
        cwd = proc.info.get("cwd")
        if not cwd or not Path(cwd).is_relative_to(root):
            continue
        with contextlib.suppress(psutil.Error, ProcessLookupError, PermissionError):
            if os.getsid(proc.pid) != proc.pid or proc.status() == psutil.STATUS_ZOMBIE:
                continue
            carried = proc.environ().get(OWNER_VAR)
            if carried and (mark is None or carried == mark):
                found.append(identify(proc.pid))
    return found


def unrecorded(worktree: Path, mark: str) -> ProcessIdentity | None:
    """The service `mark` names, running in `worktree` although no registry entry records it
    (its starter was killed before it could write one); the oldest, if it ever were several."""
    found = marked_under(worktree, mark)
    return min(found, key=lambda i: i.boot_ticks or i.create_time or 0) if found else None
