"""The log relay, run as the real process a service writes to: a line without end does not
grow it, the log is rotated by size and count, no secret (nor a piece of one cut by the line
bound) reaches the file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psutil

from tasks.logrotate import rotated
from tasks.worktree.log_relay import SECRETS_VAR

ROOT = Path(__file__).resolve().parents[3]


def run_relay(log: Path, data_writer, *limits: int, secrets: str = "[]") -> subprocess.Popen:
    relay = subprocess.Popen(
        [sys.executable, "-m", "tasks.worktree.log_relay", str(log), *map(str, limits)],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", SECRETS_VAR: secrets},
    )
    data_writer(relay)
    relay.stdin.close()
    assert relay.wait(timeout=60) == 0
    return relay


def test_a_line_without_end_is_cut_and_the_relay_stays_small(tmp_path):
    log = tmp_path / "svc.log"
    chunk = b"x" * (1 << 20)
    peak = []

    def write(relay):
        proc = psutil.Process(relay.pid)
        relay.stdin.write(b"before\n")
        for _ in range(64):  # 64 MiB, no newline
            relay.stdin.write(chunk)
            relay.stdin.flush()
        peak.append(proc.memory_info().rss)
        relay.stdin.write(b"\nafter\n")

    run_relay(log, write, 1 << 30, 2, 4096, secrets="[]")
    lines = log.read_bytes().splitlines()
    assert lines[0] == b"before" and lines[-1] == b"after" and len(lines) == 3
    assert lines[1].startswith(b"x" * 4096) and len(lines[1]) < 4096 + 100
    assert f"{64 * (1 << 20) - 4096} more bytes dropped".encode() in lines[1]
    assert peak[0] < 48 * (1 << 20), f"relay RSS {peak[0]} bytes while a 64 MiB line went by"


def test_the_log_is_rotated_by_size_keeping_a_bounded_count(tmp_path):
    log = tmp_path / "svc.log"

    def write(relay):
        for n in range(2000):
            relay.stdin.write(f"line {n:05d} {'.' * 40}\n".encode())

    run_relay(log, write, 10_000, 2, 4096)
    files = [log, rotated(log, 1), rotated(log, 2)]
    assert all(p.exists() for p in files) and not rotated(log, 3).exists()
    assert all(p.stat().st_size <= 10_000 for p in files)
    kept = b"".join(p.read_bytes() for p in reversed(files)).decode().splitlines()
    numbers = [int(line.split()[1]) for line in kept]
    assert numbers == list(range(numbers[0], 2000)), "the newest lines, in order, none lost"


def test_no_secret_nor_a_piece_of_one_cut_by_the_line_bound_reaches_the_log(tmp_path):
    log = tmp_path / "svc.log"
    secret = "sk-live-4e9d0c7a1b3f"

    def write(relay):
        relay.stdin.write(f"key={secret} ok\n".encode())
        # the bound (64 bytes) falls in the middle of the secret
        relay.stdin.write(b"y" * 54 + secret.encode() + b"z" * 500 + b"\n")

    run_relay(log, write, 1 << 20, 2, 64, secrets=f'["{secret}"]')
    text = log.read_text()
    assert "key=[REDACTED] ok" in text
    assert secret[:6] not in text, text
