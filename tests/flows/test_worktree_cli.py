"""`reactor worktree`: bad input is one line on stderr and a non-zero exit; nothing created."""

from __future__ import annotations

from typer.testing import CliRunner

from reactor.cli import app
from tasks.worktree.sample_repo import SAMPLE_SPEC, make_sample_repo
from tests.unit.worktree.helpers import port_range, worktree_paths

runner = CliRunner()


def test_deploy_refuses_shell_metacharacters_with_one_line(tmp_path, reactor_env):
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        f"repo_path: {tmp_path}\nworktrees:\n"
        "  - {name: 'api;rm -rf ~', branch: x, start_command: python s.py}\n"
    )
    result = runner.invoke(app, ["worktree", "deploy", str(spec)])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: worktrees.0.name: worktree name")


def test_deploy_refuses_a_directory_that_is_not_a_repository(tmp_path, reactor_env):
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        f"repo_path: {tmp_path}\nworktrees:\n  - {{name: api, branch: x, start_command: a}}\n"
    )
    result = runner.invoke(app, ["worktree", "deploy", str(spec)])
    assert result.exit_code == 2
    assert f"error: repo_path '{tmp_path}' is not a git repository" in result.stderr
    assert not (reactor_env.coordination_dir / "environment_registry.json").exists()


def test_deploy_status_teardown_on_the_sample(tmp_path, reactor_env, request):
    repo = make_sample_repo(tmp_path / "repo", ["db", "api", "web"])
    spec = tmp_path / "spec.yaml"
    text = SAMPLE_SPEC.read_text().replace("/tmp/reactor-worktree-demo/repo", str(repo))
    # ports of its own: the sample's default range is the demo's, which another worker may run
    low, high = port_range()
    spec.write_text(f"{text}port_range: [{low}, {high}]\n")
    deployed = runner.invoke(app, ["worktree", "deploy", str(spec), "--json"])
    request.addfinalizer(
        lambda: runner.invoke(app, ["worktree", "teardown", "--repo", str(repo), "--force"])
    )
    assert deployed.exit_code == 0, deployed.output
    assert '"healthy": 4' in deployed.stdout
    status = runner.invoke(app, ["worktree", "status"])
    assert status.stdout.count("alive=True healthy=True") == 4
    down = runner.invoke(app, ["worktree", "teardown", "--repo", str(repo)])
    assert down.exit_code == 0 and down.stdout.count("removed worktree") == 4
    assert worktree_paths(repo) == [str(repo)]


def test_teardown_with_uncommitted_work_is_refused_in_one_line_unless_forced(
    tmp_path, reactor_env, request
):
    repo = make_sample_repo(tmp_path / "repo", ["db"])
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        f"repo_path: {repo}\nhealth_poll_interval_s: 0.1\nworktrees:\n"
        "  - {name: db, branch: service/db, start_command: python service.py}\n"
    )
    request.addfinalizer(
        lambda: runner.invoke(app, ["worktree", "teardown", "--repo", str(repo), "--force"])
    )
    assert runner.invoke(app, ["worktree", "deploy", str(spec)]).exit_code == 0
    (repo / "worktrees" / "db" / "draft.md").write_text("unsaved\n")

    refused = runner.invoke(app, ["worktree", "teardown", "--repo", str(repo)])
    assert refused.exit_code == 1
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: refusing to tear down worktree 'db'")
    assert "1 uncommitted file(s) (draft.md)" in lines[0] and "--force" in lines[0]
    assert (repo / "worktrees" / "db" / "draft.md").exists()

    forced = runner.invoke(app, ["worktree", "teardown", "--repo", str(repo), "--force"])
    assert forced.exit_code == 0 and "removed worktree" in forced.stdout
    assert worktree_paths(repo) == [str(repo)]
