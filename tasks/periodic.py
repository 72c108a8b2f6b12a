"""One background thread calling a function at a fixed interval while a block runs: the
swarm's lease keeper and its agents' heartbeat. (`threading.Timer` fires once; sched and
APScheduler bring a scheduler for what is one loop.) Pure Python, no Prefect.

The rule every beat follows: a beat that raises failed this time (a store briefly
unavailable, a pool timeout, a locked database) and is logged and tried again at the next
interval; only a beat that returns False (what it keeps alive is gone) stops the loop.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator

from tasks.redaction import known_secrets, redact_text

logger = logging.getLogger("reactor.periodic")


@contextlib.contextmanager
def every(interval_s: float, call: Callable[[], bool | None], name: str) -> Iterator[None]:
    """Call `call()` every `interval_s` seconds until the block ends or `call` returns False;
    an exception from `call` is logged and the call tried again at the next interval. The
    thread is joined before the block's exit returns."""
    stop = threading.Event()

    def loop() -> None:
        failures = 0
        while not stop.wait(interval_s):
            try:
                if call() is False:
                    return
            except Exception as exc:  # transient by the rule above: the next beat retries
                failures += 1
                error = redact_text(f"{type(exc).__name__}: {exc}", known_secrets())
                logger.warning(
                    "%s: beat failed (%s); %d in a row, trying again in %g s",
                    name,
                    error,
                    failures,
                    interval_s,
                )
            else:
                failures = 0

    thread = threading.Thread(target=loop, name=name, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
