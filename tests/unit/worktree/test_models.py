"""Bad input is refused with a clear error before anything is created."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tasks.errors import InvalidInput
from tasks.worktree.environment import process_env, service_environment
from tasks.worktree.models import DeploymentRequest, WorktreeSpec
from tasks.worktree.preflight import preflight
from tasks.worktree.process import commands_for


def spec(name="api", **kw):
    return {"name": name, "branch": f"service/{name}", "start_command": "python app.py", **kw}


@pytest.mark.parametrize(
    "name", ["../etc", "a/b", "a;rm -rf /", "$(whoami)", "a b", "x" * 65, "a..b", "-rf", "`id`", ""]
)
def test_unsafe_names_are_rejected(name):
    with pytest.raises(ValidationError, match="A-Za-z0-9"):
        WorktreeSpec(**spec(name))


@pytest.mark.parametrize("branch", ["a..b", "feat;ls", "-x", "a//b", "x.lock", "a b"])
def test_unsafe_branches_are_rejected(branch):
    with pytest.raises(ValidationError, match="branch"):
        WorktreeSpec(**{**spec(), "branch": branch})


def test_unknown_dependency_is_named(tmp_path):
    with pytest.raises(ValidationError, match="'api' depends on unknown worktree 'cache'"):
        DeploymentRequest(repo_path=tmp_path, worktrees=[spec("api", dependencies=["cache"])])


def test_cycle_is_named_in_error(tmp_path):
    with pytest.raises(ValidationError, match=r"worktree cycle: (a -> b -> a|b -> a -> b)"):
        DeploymentRequest(
            repo_path=tmp_path,
            worktrees=[spec("a", dependencies=["b"]), spec("b", dependencies=["a"])],
        )


@pytest.mark.parametrize("port", [80, 1023, 65536, -1])
def test_ports_out_of_range_are_rejected(port):
    with pytest.raises(ValidationError, match="port"):
        WorktreeSpec(**spec(port=port))


def test_same_port_twice_is_rejected(tmp_path):
    with pytest.raises(ValidationError, match="port 4100 is requested by more than one"):
        DeploymentRequest(
            repo_path=tmp_path, worktrees=[spec("a", port=4100), spec("b", port=4100)]
        )


def test_port_env_must_agree_with_port():
    with pytest.raises(ValidationError, match="disagrees"):
        WorktreeSpec(**spec(port=4100, environment_variables={"PORT": "4101"}))
    assert WorktreeSpec(**spec(environment_variables={"PORT": "4101"})).port == 4101


def test_generic_types_need_a_start_command():
    with pytest.raises(ValidationError, match="needs a start_command"):
        WorktreeSpec(name="n", branch="b", type="node")


def test_a_directory_that_is_not_a_repository_is_rejected_and_nothing_is_created(tmp_path):
    request = DeploymentRequest(repo_path=tmp_path, worktrees=[spec()])
    with pytest.raises(InvalidInput, match="is not a git repository"):
        preflight(request)
    assert list(tmp_path.iterdir()) == []


def test_elixir_types_keep_the_mix_defaults_and_user_commands_win():
    phoenix = WorktreeSpec(name="p", branch="main", type="phoenix")
    assert commands_for(phoenix).install == ["mix", "deps.get"]
    assert commands_for(phoenix).start == ["mix", "phx.server"]
    mine = WorktreeSpec(name="p", branch="main", type="xavos", start_command="mix run --no-halt")
    assert commands_for(mine).start == ["mix", "run", "--no-halt"]
    # a string command is split like a shell would, but never run by one
    odd = WorktreeSpec(name="g", branch="main", start_command="echo 'a; rm -rf /' $HOME")
    assert commands_for(odd).start == ["echo", "a; rm -rf /", "$HOME"]


def test_user_environment_wins_and_mix_env_is_never_overwritten(tmp_path, monkeypatch):
    s = WorktreeSpec(
        name="p", branch="main", type="phoenix", environment_variables={"ASH_ENV": "dev"}
    )
    monkeypatch.delenv("MIX_ENV", raising=False)
    ours = service_environment(s, 4000, tmp_path)
    assert ours["MIX_ENV"] == "dev" and ours["PORT"] == "4000"
    assert ours["DATABASE_DEV"] == "p_dev" and ours["DATABASE_TEST"] == "p_test"
    # the deploying process's MIX_ENV wins over our default, and is what gets recorded
    monkeypatch.setenv("MIX_ENV", "prod")
    ours = service_environment(s, 4000, tmp_path)
    assert ours["MIX_ENV"] == "prod"
    env = process_env(ours, {"ASH_ENV": "dev", "OTEL_SERVICE_NAME": "custom"})
    assert env["MIX_ENV"] == "prod"
    assert env["OTEL_SERVICE_NAME"] == "custom" and env["ASH_ENV"] == "dev"
    assert process_env(ours, {"MIX_ENV": "test"})["MIX_ENV"] == "test"
