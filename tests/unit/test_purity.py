"""Prefect stays at the edge: every module under tasks/ and reactor/ imports without bringing
Prefect in, apart from the edge modules, which exist to talk to it (the @task wrappers, the
`publish` modules of each scenario, and the few shared helpers named in EDGE_MODULES). The
modules are found by walking the tree, so a new module is checked from the day it is added."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ROOTS = ("tasks", "reactor")
EDGE_STEMS = {"prefect_tasks", "publish"}  # in any package: the Prefect edge of a scenario
EDGE_MODULES = {
    "tasks.artifacts",
    "tasks.compensation",
    "tasks.events",
    "tasks.resume",
    "tasks.runtime",
}
NOT_IMPORTED = {"reactor.__main__"}  # runs the CLI when imported


def module_names(repo: Path = REPO) -> list[str]:
    """Every module under the roots, packages first (sorted), edge modules left out."""
    names = []
    for root in ROOTS:
        for path in (repo / root).rglob("*.py"):
            parts = path.relative_to(repo).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            if parts[-1] not in EDGE_STEMS and name not in EDGE_MODULES | NOT_IMPORTED:
                names.append(name)
    return sorted(names)


# one interpreter imports them in turn with Prefect made unimportable, so each module's import
# is judged on its own whatever came before; one that reaches Prefect is named with the project
# files its import went through
SCRIPT = """
import importlib, importlib.abc, json, sys, traceback
from pathlib import Path


class NoPrefect(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] == "prefect":
            raise ModuleNotFoundError(f"No module named {name!r} (blocked)", name=name)


sys.meta_path.insert(0, NoPrefect())
repo = Path.cwd()
offenders, errors = {}, {}
for name in sys.argv[1:]:
    try:
        importlib.import_module(name)
    except ModuleNotFoundError as e:
        if (e.name or "").partition(".")[0] != "prefect":
            errors[name] = repr(e)
            continue
        files = [Path(f.filename) for f in traceback.extract_tb(e.__traceback__)]
        via = [str(f.relative_to(repo)) for f in files if f.is_relative_to(repo)]
        offenders[name] = list(dict.fromkeys(via))
    except Exception as e:
        errors[name] = repr(e)
print(json.dumps({"offenders": offenders, "errors": errors}))
"""


def test_no_module_but_the_edge_imports_prefect():
    names = module_names()
    assert len(names) >= 80, names  # the walk found the tree
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, *names],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
        timeout=600,
    )
    found = json.loads(out.stdout.splitlines()[-1])
    assert found["errors"] == {}, f"modules that failed to import: {found['errors']}"
    offenders = found["offenders"].items()
    named = [f"{m} (through {' -> '.join(via)})" for m, via in offenders]
    assert not named, (
        "these modules bring Prefect in; move the Prefect part to an edge module (a "
        f"prefect_tasks or publish module): {'; '.join(named)}"
    )
