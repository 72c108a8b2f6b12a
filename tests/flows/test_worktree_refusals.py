"""`reactor worktree` refuses instead of guessing, run as installed (a subprocess): a teardown
aimed at a repository that is not there or a name nobody registered, and init-sample into a
directory with files or into an existing repository, are one `error:` line, no traceback and
nothing changed; init-sample into a new directory works, and again on its own result."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import git

REACTOR = Path(sys.executable).parent / "reactor"


def _reactor(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "REACTOR_COORDINATION_DIR": str(tmp_path / "coordination")}
    return subprocess.run(
        [str(REACTOR), *args], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )


def _refused(done: subprocess.CompletedProcess, *named: str) -> None:
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert all(n in lines[0] for n in named)


def test_teardown_of_a_repository_that_is_not_there_is_an_error(tmp_path):
    _refused(_reactor(tmp_path, "worktree", "teardown", "--repo", "/typo"), "/typo")
    plain = tmp_path / "plain"
    plain.mkdir()
    _refused(_reactor(tmp_path, "worktree", "teardown", "--repo", str(plain)), str(plain))


def test_teardown_of_an_unregistered_name_is_an_error(tmp_path):
    _refused(_reactor(tmp_path, "worktree", "teardown", "no-such-env"), "no-such-env")


def test_init_sample_refuses_a_directory_with_files_and_leaves_them(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "README.md").write_text("my notes\n")
    _refused(_reactor(tmp_path, "worktree", "init-sample", str(mine)), str(mine), "README.md")
    assert (mine / "README.md").read_text() == "my notes\n"
    assert sorted(p.name for p in mine.iterdir()) == ["README.md"]


def test_init_sample_refuses_an_existing_repository_and_adds_no_branch(tmp_path):
    theirs = git.Repo.init(tmp_path / "theirs", initial_branch="trunk")
    _refused(_reactor(tmp_path, "worktree", "init-sample", theirs.working_dir), "theirs")
    assert [h.name for h in theirs.heads] == [] and not (tmp_path / "theirs/service.py").exists()


def test_init_sample_makes_a_new_repository_and_accepts_its_own_again(tmp_path):
    target = tmp_path / "demo" / "repo"
    first = _reactor(tmp_path, "worktree", "init-sample", str(target))
    assert first.returncode == 0, first.stderr
    repo = git.Repo(target)
    assert {h.name for h in repo.heads} == {"main", "service/db", "service/api", "service/web"}
    head = repo.head.commit.hexsha
    again = _reactor(tmp_path, "worktree", "init-sample", str(target))
    assert again.returncode == 0 and "error" not in again.stderr
    assert repo.head.commit.hexsha == head and len(list(repo.heads)) == 4
