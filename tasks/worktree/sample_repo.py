"""A real git repository holding the sample service on several branches, for the demo, the
tests and the bench: `make_sample_repo(path, ["api", "web"])` commits `service.py` on `main`
and creates branch `service/<name>` per service with one commit of its own."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import git
import yaml

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "worktree"
SERVICE_SOURCE = SAMPLES / "service.py"
SAMPLE_SPEC = SAMPLES / "spec.yaml"


def sample_service(
    name: str, deps: Iterable[str] = (), env: dict[str, str] | None = None, **extra: Any
) -> dict[str, Any]:
    """A worktree spec of the sample service (`python service.py`) on branch `service/<name>`,
    with `env` as its environment variables; `extra` sets any other field of the spec."""
    return {
        "name": name,
        "branch": f"service/{name}",
        "type": "python",
        "dependencies": list(deps),
        "start_command": ["python", "service.py"],
        "environment_variables": dict(env or {}),
        **extra,
    }


def make_sample_repo(path: Path, services: list[str] | tuple[str, ...] = ()) -> Path:
    """Create (or reuse) a repository at `path` with the sample service on `main` and one
    `service/<name>` branch per entry of `services`; returns the repository path."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    if (path / ".git").exists():
        repo = git.Repo(path)
    else:
        repo = git.Repo.init(path, initial_branch="main")
        with repo.config_writer() as config:
            config.set_value("user", "name", "Reactor Flows sample")
            config.set_value("user", "email", "sample@reactor.invalid")
        (path / "service.py").write_text(SERVICE_SOURCE.read_text())
        (path / "README.md").write_text("# Sample services for reactor worktree deployment\n")
        (path / ".gitignore").write_text("/worktrees/\n*.log\n.env\n.reactor-logs/\n")
        repo.index.add(["service.py", "README.md", ".gitignore"])
        repo.index.commit("sample service")
    existing = {h.name for h in repo.heads}
    for name in services:
        branch = f"service/{name}"
        if branch in existing:
            continue
        repo.git.checkout("-q", "-b", branch, "main")
        (path / "SERVICE_NAME").write_text(f"{name}\n")
        repo.index.add(["SERVICE_NAME"])
        repo.index.commit(f"service {name}")
        repo.git.checkout("-q", "main")
    repo.close()  # stops GitPython's persistent `git cat-file` helpers
    return path


def sample_request_data(repo_path: Path, worktrees_root: Path | None = None) -> dict:
    """The bundled `samples/worktree/spec.yaml` pointed at `repo_path`."""
    data = yaml.safe_load(SAMPLE_SPEC.read_text())
    data["repo_path"] = str(repo_path)
    if worktrees_root is not None:
        data["worktrees_root"] = str(worktrees_root)
    return data


SAMPLE_SERVICES = ("db", "api", "web")  # `gateway` gets a new branch from main at deploy time


def sample_request(root: Path):
    """The bundled sample as a DeploymentRequest, with its repository built under `root`
    (one line for the demo: `worktree_deployment(sample_request(tmp_dir))`)."""
    from tasks.worktree.models import DeploymentRequest

    repo = make_sample_repo(Path(root) / "repo", SAMPLE_SERVICES)
    return DeploymentRequest(**sample_request_data(repo))
