"""Networking helpers shared by the worktree ports, the stand-ins, the server and the project's
HTTP clients."""

from __future__ import annotations

import errno
import functools
import socket
import ssl


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when nothing listens on `port` (a bind test, as the kernel decides). SO_REUSEADDR
    as servers set it: a closed connection's TIME_WAIT does not make a port busy."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A port the kernel just handed out on `host` (free at the time of the call)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


@functools.cache
def tls_context() -> ssl.SSLContext:
    """httpx's default TLS context (certifi's CA bundle, or SSL_CERT_FILE/SSL_CERT_DIR), built
    once for the project's HTTP clients: httpx builds one per client, ~20 ms of CPU each."""
    import httpx  # here: the CLI's light commands import this module

    return httpx.create_ssl_context()
