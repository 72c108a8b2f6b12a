"""A throwaway S3 server for the test session: SeaweedFS (`deployments/objectstore.py`, the code
behind `make objectstore`) in a temp dir on loopback, stopped and removed at the end (or at
interpreter exit, whichever comes first), even when tests fail.

`S3Server.env(bucket)` gives the AWS variables a test (or a subprocess) sets; `fresh_bucket`
creates an empty bucket of one test's own, so tests sharing the server never see each
other's objects.
"""

from __future__ import annotations

import atexit
import contextlib
import shutil
import tempfile
from pathlib import Path

from deployments.objectstore import REGION, LocalObjectStore
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
        s = self.server.state()
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": s["access_key"],
            "AWS_SECRET_ACCESS_KEY": s["secret_key"],
            "AWS_REGION": REGION,
        }

    def fresh_bucket(self, prefix: str = "t") -> str:
        name = f"{prefix}-{next_ns()}"[:63].lower()
        self.server.create_bucket(name)
        return name

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        with contextlib.suppress(Exception):
            self.server.stop()
        shutil.rmtree(self.root, ignore_errors=True)
