"""Task results on the shared bucket: the prefect-aws `S3Bucket` block `deployments/storage.py`
saves (by its command, and by `make deploy`'s hook) reads and writes the session's SeaweedFS,
holds no key, and a missing bucket is one `error:` line naming it."""

from __future__ import annotations

import pytest
from prefect.settings import PREFECT_API_URL

from deployments import storage


def _load(name: str):
    from prefect_aws import S3Bucket  # here: 0.5 s for every xdist worker when at the top

    return S3Bucket.load(name)


def test_deploys_hook_creates_the_named_block_in_the_exports_bucket(s3_env, monkeypatch):
    import s3fs

    monkeypatch.setenv("REACTOR_EXPORTS_DIR", f"s3://{s3_env}/exports")
    monkeypatch.setenv("REACTOR_RESULT_STORAGE", f"s3-bucket/hook-{s3_env}")
    line = storage.ensure_from_settings()
    assert f"s3://{s3_env}/exports/_results" in line
    block = _load(f"hook-{s3_env}")
    assert block.credentials.aws_secret_access_key is None  # each host's own keys, not stored
    block.write_path("probe", b"result bytes")
    assert block.read_path("probe") == b"result bytes"
    fs = s3fs.S3FileSystem(skip_instance_cache=True)
    assert fs.cat_file(f"{s3_env}/exports/_results/probe") == b"result bytes"
    assert "exists" in storage.ensure_from_settings()


def test_the_command_names_a_missing_bucket_and_saves_nothing(s3_env, monkeypatch, capsys):
    monkeypatch.setenv("PREFECT_API_URL", PREFECT_API_URL.value())
    code = storage.main([f"s3://{s3_env}-nope/results", "--block", f"nope-{s3_env}"])
    err = capsys.readouterr().err
    assert code != 0
    assert err.startswith("error:") and f"{s3_env}-nope" in err
    with pytest.raises(ValueError):
        _load(f"nope-{s3_env}")


def test_the_command_prints_the_variable_to_export(s3_env, monkeypatch, capsys):
    monkeypatch.setenv("PREFECT_API_URL", PREFECT_API_URL.value())
    assert storage.main([f"s3://{s3_env}/results", "--block", f"cmd-{s3_env}"]) == 0
    assert (
        capsys.readouterr().out.strip() == f"export REACTOR_RESULT_STORAGE=s3-bucket/cmd-{s3_env}"
    )
