"""One background thread calling a function at a fixed interval while a block runs: the
swarm's lease keeper and its agents' heartbeat. (`threading.Timer` fires once; sched and
APScheduler bring a scheduler for what is one loop.) Pure Python, no Prefect."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator


@contextlib.contextmanager
def every(interval_s: float, call: Callable[[], bool | None], name: str) -> Iterator[None]:
    """Call `call()` every `interval_s` seconds until the block ends or `call` returns False;
    the thread is joined before the block's exit returns."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(interval_s):
            if call() is False:
                return

    thread = threading.Thread(target=loop, name=name, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
