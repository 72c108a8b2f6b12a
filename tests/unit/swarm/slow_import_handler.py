"""A `module:function` handler whose module takes `IMPORT_S` to import (a heavy dependency):
that start-up is not the handler's own time."""

from __future__ import annotations

import time

IMPORT_S = 2.0
time.sleep(IMPORT_S)


def quick(call: dict) -> dict:
    return {"quick": True}
