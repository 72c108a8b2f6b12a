"""The session's Prefect test server, started early: its subprocess is launched as soon as the
pytest process has collected a test that needs it, so that its start-up runs beside the rest
of collection and the tests that need no server instead of after them. It starts on a copy of a
database migrated once for the run, or kept from an earlier one (`build_template`): ≈ 6 s of
CPU instead of 13 s for ~150 migrations and block registration on an empty one. The
`prefect_server` fixture then points this process at it with `harness`, which does what
Prefect's `prefect_test_harness` does for the server it starts (same command, same temporary
SQLite database, same settings here)."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import ctypes
import fcntl
import hashlib
import importlib.util
import inspect
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from importlib.metadata import entry_points, version
from pathlib import Path

import httpx

from tests.loopback import free_port

PR_SET_PDEATHSIG = 1
ROOT = Path(__file__).resolve().parent.parent


def _die_with_parent() -> None:
    # a pytest process killed outright runs no atexit hook: the kernel stops its server then
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def template_path(config) -> Path | None:
    """Where a migrated database for this Prefect (and its collections' blocks) is kept between
    runs: pytest's cache directory, or None without it."""
    cache = getattr(config, "cache", None)
    if cache is None:
        return None
    dists = {"prefect"} | {ep.dist.name for ep in entry_points(group="prefect.collections")}
    key = hashlib.sha256(repr(sorted((d, version(d)) for d in dists)).encode()).hexdigest()
    return cache.mkdir("prefect-server") / f"migrated-{key[:16]}.db"


def build_template(path: Path) -> None:
    """Build `path` in a subprocess unless it exists or another session builds it. The builder
    holds its lock (taken here, before it starts) until the database is in place: a server
    that starts meanwhile waits for it, then copies it instead of migrating its own (≈ 5.5 s
    of CPU each, and ≈ 1.5 s of block registration)."""
    lock = os.open(path.with_suffix(".lock"), os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if not path.exists():
            subprocess.Popen(
                [sys.executable, "-m", "tests.prefect_server", str(path)],
                cwd=ROOT,
                pass_fds=(lock,),  # the builder's copy keeps the lock until it exits
                stdin=subprocess.DEVNULL,
            )
    except BlockingIOError:
        pass  # being built by another session
    finally:
        os.close(lock)


def _unlocked(lock: Path, wait: bool) -> bool:
    """Whether no builder holds `lock` (waiting for it to finish when `wait`)."""
    fd = os.open(lock, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | (0 if wait else fcntl.LOCK_NB))
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)  # releases it


async def _migrate(path: Path) -> None:
    part = path.with_name(f"{path.name}.{os.getpid()}.part")
    os.environ["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = f"sqlite+aiosqlite:///{part}"
    import prefect.plugins
    from prefect.server.database import provide_database_interface
    from prefect.server.models.block_registration import run_block_auto_registration

    try:
        prefect.plugins.load_prefect_collections()  # their block types too, as the server does
        db = provide_database_interface()
        await db.create_db()
        async with await db.session() as session:
            await run_block_auto_registration(session=session)
        await (await db.engine()).dispose()
        os.replace(part, path)
    finally:
        part.unlink(missing_ok=True)  # a failed build: the servers migrate their own


class EarlyServer:
    """A Prefect API server in a subprocess, launched the way `prefect_test_harness` launches
    its own (`uvicorn ... prefect.server.api.server:create_app` with the ephemeral-server flags
    and a database in a temporary directory), without importing Prefect here first. With a
    `template` it starts on a copy of it once it is built."""

    def __init__(self, template: Path | None = None) -> None:
        self.dir = tempfile.mkdtemp()
        self.port = free_port()
        self.db = f"sqlite+aiosqlite:///{Path(self.dir) / 'prefect-test.db'}"
        self.log = Path(self.dir) / "server.log"
        self.template = template
        self.proc: subprocess.Popen | None = None
        atexit.register(self.stop)  # when no test of this process ends up using it
        self.launch(wait=False)

    def launch(self, wait: bool) -> None:
        """Start the server unless it is started: on a copy of the template once its builder
        has finished (else later: called again, or with `wait`), or migrating its own database
        when there is no template."""
        if self.proc is not None:
            return
        env = {
            **os.environ,
            "PREFECT_UI_ENABLED": "0",
            "PREFECT__SERVER_EPHEMERAL": "1",
            "PREFECT__SERVER_FINAL": "1",
            "PREFECT_SERVER_DATABASE_CONNECTION_URL": self.db,
        }
        if self.template is not None:
            if not _unlocked(self.template.with_suffix(".lock"), wait):
                return
            if self.template.exists():
                shutil.copyfile(self.template, Path(self.dir) / "prefect-test.db")
                # the template has them; without this the server loads the collections again
                env["PREFECT_API_BLOCKS_REGISTER_ON_START"] = "0"
                env["PREFECT_MEMOIZE_BLOCK_AUTO_REGISTRATION"] = "0"
        prefect_dir = Path(importlib.util.find_spec("prefect").origin).parent
        # to a file, not the session's terminal: a green run shows no server traceback (its
        # stop can cancel a task-run flush), and a server that does not start is quoted
        log = open(self.log, "ab")  # noqa: SIM115 - the child holds it; closed below
        self.proc = subprocess.Popen(
            [
                sys.executable, "-m", "uvicorn", "--app-dir", str(prefect_dir.parent),
                "--factory", "prefect.server.api.server:create_app",
                "--host", "127.0.0.1", "--port", str(self.port),
                "--log-level", "error", "--lifespan", "on",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            # launched from the main thread (a pytest hook), which lives as long as the process
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )  # fmt: skip
        log.close()

    def healthy(self, timeout_s: float) -> bool:
        """Wait until the server answers its health check (True), exits, or `timeout_s` ends."""
        self.launch(wait=True)
        deadline = time.monotonic() + timeout_s
        with httpx.Client() as client:
            while self.proc.poll() is None and time.monotonic() < deadline:
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(f"http://127.0.0.1:{self.port}/api/health").is_success:
                        return True
                time.sleep(0.1)
        return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


@contextlib.contextmanager
def harness(early: EarlyServer | None, timeout_s: int) -> Iterator[None]:
    """What `prefect.testing.utilities.prefect_test_harness` does, on the early server (else on
    one started here): this process's settings point at it, the global settings context too,
    and on exit the log and event workers are drained before it stops. Not the harness itself:
    importing it imports the whole server (3 s of CPU and ~1,100 modules per worker, which
    every later full garbage collection walks), which a client of a server in a subprocess
    does not need."""
    import prefect.context
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_SERVER_DATABASE_CONNECTION_URL,
        temporary_settings,
    )
    from prefect.utilities.asyncutils import run_coro_as_sync

    server = early or EarlyServer()
    try:
        if not server.healthy(timeout_s):
            tail = server.log.read_text(errors="replace")[-3000:] if server.log.exists() else ""
            raise RuntimeError(f"the Prefect test server did not start in {timeout_s} s:\n{tail}")
        settings = {
            PREFECT_SERVER_DATABASE_CONNECTION_URL: server.db,
            PREFECT_API_URL: f"http://127.0.0.1:{server.port}/api",
        }
        with (
            temporary_settings(updates=settings),
            # for code in a contextvars context copied before this one (as the harness does)
            prefect.context._temporary_global_settings_context(
                prefect.context.get_settings_context()
            ),
        ):
            yield

            async def drain() -> None:  # no stale logs or events reach a stopped server
                with contextlib.suppress(RuntimeError):  # a worker that never started
                    result = APILogWorker.instance().drain()
                    if inspect.isawaitable(result):
                        await result
                result = EventsWorker.drain_all()
                if inspect.isawaitable(result):
                    await result

            run_coro_as_sync(drain())
    finally:
        server.stop()


if __name__ == "__main__":  # build_template's builder
    asyncio.run(_migrate(Path(sys.argv[1])))
