"""The package installed the way a worker installs it — no extras, from the lock — in a fresh
virtual environment: every flow module imports, and SPR runs without NLTK data (its stemmer is
pure code; nothing is downloaded at run time). A runtime dependency declared only in an extra
fails here."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("flows", "tasks", "deployments", "reactor")  # pyproject's packages.find

CHECK = """
import importlib, pkgutil, sys
import flows
names = sorted(f"flows.{m.name}" for m in pkgutil.iter_modules(flows.__path__))
for name in names:
    importlib.import_module(name)
assert "flows.spr_pipeline" in names, names
assert not any(p.startswith(sys.argv[1]) for p in flows.__path__), "imported the source tree"

import nltk
nltk.data.path[:] = []  # any NLTK data lookup now fails
from tasks.spr import analyze, compress, decompress, quality
text = open(sys.argv[2], encoding="utf-8").read()
spr = compress(text, "standard", 0.15, strategy=analyze(text).strategy)
assert 0 < quality(text, spr.spr_text, decompressed=decompress(spr.spr_text)).quality <= 1
print("ok", len(names))
"""


def _uv() -> list[str]:
    uv = Path(sys.executable).with_name("uv")
    if uv.exists():
        return [str(uv)]
    if shutil.which("uv"):
        return ["uv"]
    pytest.fail("uv is not installed: run `make setup` (it installs the pinned uv into .venv)")


def _source_copy(target: Path) -> Path:
    """What a build needs, outside the checkout (a build writes build/ next to its sources)."""
    target.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, target / name)
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package, target / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    return target


@pytest.mark.slow
def test_the_package_without_extras_imports_every_flow(tmp_path):
    source = _source_copy(tmp_path / "src")
    venv = tmp_path / "venv"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env |= {
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
        "REACTOR_COORDINATION_DIR": str(tmp_path / "coordination"),
        "REACTOR_EXPORTS_DIR": str(tmp_path / "exports"),
    }
    subprocess.run([*_uv(), "venv", "-q", "--python", sys.executable, str(venv)], check=True)
    python = venv / "bin" / "python"
    lock = ROOT / "requirements.lock"
    install = [*_uv(), "pip", "install", "-q", "--python", str(python), "-c", str(lock)]
    # from uv's cache, which `make setup` filled with the same lock (7 s of index look-ups less);
    # from the index when the cache lacks a package
    offline = subprocess.run([*install, "--offline", str(source)], env=env, timeout=600)
    if offline.returncode != 0:
        subprocess.run([*install, str(source)], check=True, env=env, timeout=600)
    sample = ROOT / "samples" / "spr" / "incident-postmortem.md"
    out = subprocess.run(
        [str(python), "-I", "-c", CHECK, str(ROOT), str(sample)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split()[0] == "ok"
