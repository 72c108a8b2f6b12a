"""The PostgreSQL server `make postgres` (deployments/postgres.py) and the test suite
(tests/postgres.py) start outlives its starter holding none of its descriptors: a caller
capturing `python -m deployments.postgres start` gets its output's end when the command exits."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from deployments.postgres import LocalPostgres, find_bin

ROOT = Path(__file__).resolve().parents[2]


def _installed() -> bool:
    try:
        find_bin("pg_ctl")
    except Exception:
        return False
    return True


@pytest.mark.skipif(not _installed(), reason="PostgreSQL is not installed")
def test_a_started_postgres_holds_no_descriptor_of_its_starter():
    # not under pytest's tmp_path: as root the server runs as `postgres`, which cannot enter it
    cluster = Path(tempfile.mkdtemp(prefix="reactor-pg-"))  # LocalPostgres hands it over
    try:
        # capture_output reads to the end of stdout and stderr: it returns only when no
        # process the command started still holds them
        done = subprocess.run(
            [sys.executable, "-m", "deployments.postgres", "start", "--dir", str(cluster)],
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        port = urlsplit(done.stdout.strip()).port
        with socket.create_connection(("127.0.0.1", port), timeout=10):
            pass  # still running after its starter returned
        postmaster = int((cluster / "data" / "postmaster.pid").read_text().split()[0])
        fds = {fd: os.readlink(f"/proc/{postmaster}/fd/{fd}") for fd in ("0", "1", "2")}
        assert fds["0"] == "/dev/null"
        assert fds["1"] == fds["2"] == str(cluster / "server.log")
    finally:
        LocalPostgres(cluster).stop()
        shutil.rmtree(cluster, ignore_errors=True)
