"""Real git worktrees in a real temporary repository."""

from __future__ import annotations

import pytest

from tasks.worktree.gitops import WorktreeError, create_worktree, remove_worktree
from tasks.worktree.sample_repo import make_sample_repo
from tests.unit.worktree.helpers import branches, worktree_paths


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
