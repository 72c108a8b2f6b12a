"""Real git worktrees in a real temporary repository."""

from __future__ import annotations

import pytest

from tasks.worktree.errors import WorktreeError
from tasks.worktree.gitops import create_worktree, remove_worktree, unsaved_work
from tasks.worktree.sample_repo import make_sample_repo
from tests.unit.worktree.helpers import branches, git, worktree_paths


@pytest.fixture
def repo(tmp_path):
    return make_sample_repo(tmp_path / "repo", ["api"])


def test_existing_branch_is_attached_and_listed(repo):
    info = create_worktree(repo, repo / "worktrees", "api", "service/api")
    assert not info.created_branch
    assert str(info.path) in worktree_paths(repo)
    assert (info.path / "SERVICE_NAME").read_text() == "api\n"
    remove_worktree(repo, info.path)
    assert worktree_paths(repo) == [str(repo)]
    assert "service/api" in branches(repo)


def test_new_branch_comes_from_base_ref_and_is_deleted_on_removal(repo):
    before = branches(repo)
    info = create_worktree(repo, repo / "worktrees", "feat", "feature/x", "service/api")
    assert info.created_branch and "feature/x" in branches(repo)
    assert (info.path / "SERVICE_NAME").exists()  # branched from service/api
    done = remove_worktree(repo, info.path, "feature/x")
    assert done[-1] == "deleted branch feature/x"
    assert branches(repo) == before and worktree_paths(repo) == [str(repo)]


def test_a_branch_checked_out_elsewhere_fails_and_leaves_nothing(repo):
    before = branches(repo)
    with pytest.raises(WorktreeError, match="git worktree add for 'dup' failed"):
        create_worktree(repo, repo / "worktrees", "dup", "main")
    assert worktree_paths(repo) == [str(repo)] and branches(repo) == before
    assert not (repo / "worktrees" / "dup").exists()


def test_unknown_base_ref_is_refused(repo):
    with pytest.raises(WorktreeError, match="base_ref 'nope'"):
        create_worktree(repo, repo / "worktrees", "n", "feature/n", "nope")
    assert "feature/n" not in branches(repo)


def test_many_worktrees_added_at_once_in_one_repository_all_succeed(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    repo = make_sample_repo(tmp_path / "repo")
    with ThreadPoolExecutor(8) as pool:
        infos = list(
            pool.map(
                lambda i: create_worktree(repo, repo / "worktrees", f"w{i}", f"feature/w{i}"),
                range(8),
            )
        )
    assert len(worktree_paths(repo)) == 9
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda info: remove_worktree(repo, info.path, info.branch), infos))
    assert worktree_paths(repo) == [str(repo)] and branches(repo) == {"main"}


def test_a_clean_worktree_has_nothing_to_lose_even_with_the_deployments_own_files(repo):
    info = create_worktree(repo, repo / "worktrees", "feat", "feature/clean", "main")
    (info.path / ".env").write_text("PORT=4100\n")
    (info.path / ".reactor-logs").mkdir()
    (info.path / ".reactor-logs" / "feat.log").write_text("listening\n")
    found = unsaved_work(repo, "feat", info.path, "feature/clean", info.head)
    assert not found.at_risk, found.line()
    remove_worktree(repo, info.path, "feature/clean")


def test_uncommitted_files_and_commits_on_no_other_branch_are_named(repo):
    info = create_worktree(repo, repo / "worktrees", "feat", "feature/work", "main")
    (info.path / "notes.txt").write_text("draft\n")  # untracked
    (info.path / "service.py").write_text("# edited\n")  # tracked, modified
    found = unsaved_work(repo, "feat", info.path, "feature/work", info.head)
    assert sorted(found.uncommitted) == ["notes.txt", "service.py"]
    assert found.unmerged == []
    git(info.path, "add", "notes.txt", "service.py")
    git(info.path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "my work")
    found = unsaved_work(repo, "feat", info.path, "feature/work", info.head)
    assert found.uncommitted == [] and len(found.unmerged) == 1
    assert found.unmerged[0].endswith(" my work")
    line = found.line()
    assert "'feat'" in line and "1 commit(s) not on the base" in line and "my work" in line
    # merged into another branch: deleting this one loses nothing
    git(repo, "branch", "keep", "feature/work")
    assert not unsaved_work(repo, "feat", info.path, "feature/work", info.head).at_risk
    remove_worktree(repo, info.path, "feature/work")


def test_commits_on_a_branch_that_is_kept_are_not_at_risk(repo):
    info = create_worktree(repo, repo / "worktrees", "api", "service/api")
    (info.path / "x.txt").write_text("x\n")
    git(info.path, "add", "x.txt")
    git(info.path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "on api")
    assert not unsaved_work(repo, "api", info.path, None, info.head).at_risk
    remove_worktree(repo, info.path)


def test_a_directory_that_is_no_longer_a_worktree_is_at_risk(repo, tmp_path):
    stray = repo / "worktrees" / "stray"
    stray.mkdir(parents=True)
    (stray / "precious.txt").write_text("keep me\n")
    found = unsaved_work(repo, "stray", stray, None, None)
    assert found.at_risk and "no longer a git worktree" in found.line()


def test_a_git_retry_is_reported_and_a_lasting_failure_raised():
    import git as gitpython

    from tasks.worktree.gitops import _git_retrying

    attempts: list[int] = []

    def add_meeting_another_add():
        attempts.append(1)
        if len(attempts) == 1:  # what git says when it reads a sibling's half-written admin dir
            raise gitpython.GitCommandError(
                ["git", "worktree", "add"], 128, b"fatal: failed to read .git/worktrees/b/commondir"
            )
        return "added"

    told: list[str] = []
    assert _git_retrying(add_meeting_another_add, on_retry=told.append, what="add r") == "added"
    assert len(attempts) == 2 and len(told) == 1
    assert told[0] == "retrying add r: fatal: failed to read .git/worktrees/b/commondir"

    def refused():
        raise gitpython.GitCommandError(["git", "worktree", "add"], 128, b"fatal: invalid ref")

    with pytest.raises(gitpython.GitCommandError, match="invalid ref"):
        _git_retrying(refused, on_retry=told.append)
    assert len(told) == 1  # not transient: no retry
