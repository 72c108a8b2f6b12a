"""A throwaway S3 server for the test session: SeaweedFS (`deployments/objectstore.py`, the code
behind `make objectstore`) in a temp dir on loopback, stopped and removed at the end (or at
interpreter exit, whichever comes first), even when tests fail.

`S3Server.env()` gives the AWS variables a test (or a subprocess) sets; `fresh_bucket`
creates an empty bucket of one test's own, so tests sharing the server never see each
other's objects.
"""

from __future__ import annotations

import atexit
import contextlib
import secrets
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from deployments.objectstore import LocalObjectStore
from tasks.ids import next_ns


class S3Server:
    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="reactor-s3-"))
        self.server = LocalObjectStore(self.root, memory_limit="256MiB")
        self._stopped = False
        atexit.register(self.stop)

    def start(self) -> S3Server:
        try:
            self.server.start(buckets=())
        except BaseException:
            self.stop()
            raise
        return self

    @property
    def endpoint(self) -> str:
        return self.server.endpoint

    def env(self) -> dict[str, str]:
        """The AWS variables of this server (no exports root)."""
        return {k: v for k, v in self.server.env().items() if k != "REACTOR_EXPORTS_DIR"}

    def fresh_bucket(self, prefix: str = "t") -> str:
        name = f"{prefix}-{next_ns()}"[:63].lower()
        self.server.create_bucket(name)
        return name

    def add_user(self, name: str, actions: str = "Read,List") -> dict[str, str]:
        """A user allowed only `actions` (SeaweedFS's `s3.configure`); its AWS variables, once
        the server accepts its key."""
        import s3fs

        from deployments.objectstore import weed_binary

        key, secret = f"{name}{next_ns()}"[:20], secrets.token_urlsafe(24)
        master = f"127.0.0.1:{self.server.state()['ports']['master']}"
        subprocess.run(
            [str(weed_binary()), "shell", f"-master={master}"],
            input=f"s3.configure -user={name} -access_key={key} -secret_key={secret} "
            f"-actions={actions} -apply\n",
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        env = {**self.env(), "AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret}
        fs = s3fs.S3FileSystem(
            skip_instance_cache=True, key=key, secret=secret, endpoint_url=self.endpoint
        )
        deadline = time.monotonic() + 30
        while True:  # the identity reaches the S3 gateway asynchronously
            try:
                fs.ls("", refresh=True)
                return env
            except PermissionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        with contextlib.suppress(Exception):
            self.server.stop(timeout_s=3)  # throwaway data: no need to wait for a clean exit
        shutil.rmtree(self.root, ignore_errors=True)
