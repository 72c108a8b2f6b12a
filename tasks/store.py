"""The one locked-JSON store every shared coordination file goes through.

Every mutation holds a `filelock` lock, writes a temp file in the same directory, fsyncs it and
`os.replace`s it over the original, so readers see the old or the new file, never half of one.
The new file keeps the old one's mode (a new file follows the umask), and no known secret
value is written (`tasks.redaction.dumps_redacted`). A file that does not parse raises
`CorruptStore` naming it and is never overwritten.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Generic, TypeVar

from filelock import FileLock, Timeout

from tasks.errors import CorruptStore, LockTimeout
from tasks.redaction import dumps_redacted
from tasks.retry import with_backoff

T = TypeVar("T")

# flock is polled by filelock; 2 ms keeps 8 contending processes fast without burning a core
# (measured: 8 x 500 increments in tests/unit/test_store.py). filelock's default, 50 ms, made
# every contended write of a shared coordination file wait at least that long.
_POLL_S = 0.002


def file_lock(path: Path | str) -> FileLock:
    """The cross-process lock at `path` every shared coordination file is written under."""
    return FileLock(str(path), poll_interval=_POLL_S)


def open_temp_file(path: Path) -> tuple[int, str]:
    """A new temp file beside `path`, with the mode a plain `open(path, "w")` would give: the
    mode of the file being replaced, else 0666 less the umask. (`mkstemp` makes it 0600, and a
    dataset or registry written that way cannot be read by a second user or a worker running
    as another one.)"""
    try:
        keep: int | None = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        keep = None
    while True:
        tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
        try:
            # 0666 is masked by the umask here, by the kernel (reading the umask would change it)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        if keep is not None:
            os.fchmod(fd, keep)
        return fd, str(tmp)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically: temp file in the same dir, fsync, rename, dir fsync.
    The file keeps the mode of the one it replaces (a new one follows the umask)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = open_temp_file(path)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class JsonStore(Generic[T]):
    """A JSON document on disk, shared by threads and processes.

    `default` builds the value of a file that does not exist yet (e.g. `list` or `dict`).
    """

    def __init__(
        self,
        path: Path | str,
        default: Callable[[], T],
        lock_timeout_s: float = 10.0,
        lock_tries: int = 5,
    ) -> None:
        self.path = Path(path)
        self.default = default
        self.lock_timeout_s = lock_timeout_s
        self.lock_tries = lock_tries
        self._lock = file_lock(f"{self.path}.lock")

    def read(self) -> T:
        """The current value (no lock needed: writes are atomic renames)."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return self.default()
        try:
            return json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CorruptStore(
                f"{self.path} is not valid JSON ({exc}); it was left untouched — "
                "repair it or move it aside"
            ) from exc

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the file's lock, retrying contention with backoff (tasks/retry.py)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)

        def acquire() -> None:
            self._lock.acquire(timeout=self.lock_timeout_s / self.lock_tries)

        try:
            with_backoff(acquire, retry_on=(Timeout,), tries=self.lock_tries)
        except Timeout as exc:
            raise LockTimeout(
                f"could not lock {self.path} after {self.lock_tries} tries "
                f"({self.lock_timeout_s:.1f} s of waiting)"
            ) from exc
        try:
            yield
        finally:
            self._lock.release()

    def write(self, value: T) -> None:
        """Replace the whole value (under the lock)."""
        with self.locked():
            self._write(value)

    def update(self, mutate: Callable[[T], T | None]) -> T:
        """Read-modify-write under the lock. `mutate` may change the value in place or return a
        new one; the stored value is returned."""
        with self.locked():
            value = self.read()
            result = mutate(value)
            if result is not None:
                value = result
            self._write(value)
            return value

    def _write(self, value: T) -> None:
        # no known secret is persisted (tasks/redaction.py); keys and field names are kept
        data = dumps_redacted(value, indent=2, default=str, ensure_ascii=False).encode()
        atomic_write_bytes(self.path, data + b"\n")
